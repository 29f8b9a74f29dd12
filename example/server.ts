import { corsOriginsFromEnv, numberFromEnv } from './backends.js'
import { buildApp } from './app.js'
import { backendsOrExit } from './backend-env.js'

// `npm start`: the example on $HOST:$PORT. With REDIS_URL it uses Redis and runs jobs too (as
// many of it as you start share the work); with JOBS_QUEUE_URL and JOBS_TABLE it uses SQS and
// DynamoDB (run `npm run worker` beside it); with neither, jobs run in this process. CORS_ORIGINS:
// the origins whose pages may call it. Without what the backends it names need, it says so and exits 1.
const app = await buildApp(
  { ...await backendsOrExit('npm start', false), waitSeconds: numberFromEnv('WAIT_SECONDS', 25) },
  { logger: { level: process.env.LOG_LEVEL ?? 'info' } },
  corsOriginsFromEnv()
)
await app.listen({ port: numberFromEnv('PORT', 3000), host: process.env.HOST ?? '127.0.0.1' })
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { void app.close() })
}
