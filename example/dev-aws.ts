import { buildApp } from './app.js'
import { backendsFromEnv, corsOriginsFromEnv, numberFromEnv } from './backends.js'
import { startEmulators } from './emulators.js'
import { startEventSourceMapping } from './event-source-mapping.js'
import { exportLines } from './shell.js'

// `npm run dev:aws`: the production code path, offline. Starts the SQS, DynamoDB and S3 emulators,
// creates the queue, its DLQ, the table and the results bucket, serves the example with the SQS/DynamoDB backends
// on $HOST:$PORT, and feeds the queue to the `worker` Lambda export like the event source mapping.
const emulators = await startEmulators({ visibilityTimeout: 60, s3: true })
Object.assign(process.env, emulators.env)

// Imported only now: the Lambda module reads the environment when it loads, as on Lambda.
const { worker } = await import('./lambda.js')
const app = await buildApp(
  { ...backendsFromEnv(), waitSeconds: numberFromEnv('WAIT_SECONDS', 25) },
  { logger: { level: process.env.LOG_LEVEL ?? 'info' } },
  corsOriginsFromEnv()
)
await app.listen({ port: numberFromEnv('PORT', 3000), host: process.env.HOST ?? '127.0.0.1' })
const mapping = startEventSourceMapping({
  sqs: emulators.sqs,
  queueUrl: emulators.queueUrl,
  handler: worker,
  functionTimeoutSeconds: 900,
  onError: error => app.log.error({ err: error }, 'worker invocation failed')
})
// Lines to paste into another terminal, shell-quoted, rather than a JSON log line to pick apart.
process.stdout.write([
  '',
  '# The emulators are ready. To point `npm start` or `npm run worker` in another terminal at them, paste:',
  exportLines(emulators.env)
].join('\n'))
app.log.info('emulators ready: the export lines above point `npm start` and `npm run worker` at them')

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void (async () => {
      await mapping.stop()
      await app.close()
      await emulators.close()
      process.exit(0)
    })()
  })
}
