import { numberFromEnv } from './backends.js'
import { buildApp } from './app.js'
import { backendsOrExit } from './backend-env.js'

// `npm run worker`: a long-lived worker for deployments without Lambda (containers), on SQS
// (JOBS_QUEUE_URL and JOBS_TABLE) or on Redis (REDIS_URL). SIGTERM stops taking jobs, hands the running ones back
// to the queue (their claims released) and exits. Without what it needs it says so and exits 1.
const backends = await backendsOrExit('npm run worker', true)
const app = await buildApp(
  { ...backends, consume: true, concurrency: numberFromEnv('WORKER_CONCURRENCY', 10) },
  { logger: { level: process.env.LOG_LEVEL ?? 'info' } }
)
await app.ready()
app.log.info('worker started')
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.log.info({ signal }, 'worker stopping')
    void app.close()
  })
}
