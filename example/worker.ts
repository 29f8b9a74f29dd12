import { backendsFromEnv, numberFromEnv } from './backends.js'
import { buildApp } from './app.js'
import { workerEnvProblems } from './worker-env.js'

// `npm run worker`: a long-lived worker for deployments without Lambda (containers), on SQS
// (JOBS_QUEUE_URL and JOBS_TABLE) or on Redis (REDIS_URL). SIGTERM stops taking jobs, hands the running ones back
// to the queue (their claims released) and exits. Without what it needs it says so and exits 1.
const backends = await configured()
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

/** The backends the environment names, or, when it names none that a worker can use, the exit. */
async function configured (): Promise<ReturnType<typeof backendsFromEnv>> {
  const problems = await workerEnvProblems()
  if (problems.length === 0) {
    try {
      return backendsFromEnv()
    } catch (error) {
      problems.push((error as Error).message)
    }
  }
  process.stderr.write(`npm run worker cannot start:\n${problems.map(problem => `- ${problem}\n`).join('')}`)
  process.exit(1)
}
