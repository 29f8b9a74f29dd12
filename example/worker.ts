import { backendsFromEnv, numberFromEnv } from './backends.js'
import { buildApp } from './app.js'

// `npm run worker`: a long-lived worker for deployments without Lambda (containers), on SQS
// (JOBS_QUEUE_URL and JOBS_TABLE) or on Redis (REDIS_URL). SIGTERM stops taking jobs, hands the running ones back
// to the queue (their claims released) and exits.
const backends = backendsFromEnv()
if (backends.queue === undefined) throw new Error('npm run worker needs REDIS_URL, or JOBS_QUEUE_URL and JOBS_TABLE')
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
