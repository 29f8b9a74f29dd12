import t, { type Test } from 'tap'
import { startEmulators } from '../../example/emulators.js'
import { dynamoDbStore, sqsQueue, type LongRunningOptions } from '../../src/index.js'
import { buildTestApp, closeTestApp } from '../helpers/app.js'
import { follow } from '../helpers/child.js'

// 500 clients at once, each following 303s (fetch, real HTTP) to its own job, which ends only
// once its client has come back twice. No errors, no cross-talk. Memory is reported here and
// measured in bench/ (`npm run bench`), never asserted: a bound loose enough never to fail on
// a busy machine would prove nothing.
const CLIENTS = 500
const emulators = await startEmulators()
t.teardown(() => emulators.close())

async function load (t: Test, options: LongRunningOptions): Promise<void> {
  const test = await buildTestApp({ waitSeconds: 0.05, concurrency: CLIENTS, pollIntervalMs: 50, ...options })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const rssBefore = process.memoryUsage().rss
  let rssPeak = rssBefore
  const sampler = setInterval(() => { rssPeak = Math.max(rssPeak, process.memoryUsage().rss) }, 50)
  const results = await Promise.all(Array.from({ length: CLIENTS }, async (_, i) => {
    const body = Buffer.from(`client ${i};`.repeat(1 + (i % 50)))
    const response = await follow(`${url}/job/c${i}?hops=2`, { method: 'POST', body, headers: { 'content-type': 'application/x-load' } })
    const bytes = Buffer.from(await response.arrayBuffer())
    return { i, status: response.status, ok: response.status === 201 && response.headers.get('x-job-name') === `c${i}` && bytes.equals(body), redirected: response.redirected }
  }))
  clearInterval(sampler)
  const errors = results.filter(result => !result.ok).length
  t.equal(errors, 0, `every client got its own response ${JSON.stringify(results.filter(result => !result.ok).slice(0, 3))}`)
  t.ok(results.every(result => result.redirected), 'every client followed 303s')
  t.ok([...test.runs.values()].every(count => count === 1), 'every handler ran once')
  t.comment(`load: ${CLIENTS} clients, ${errors} errors, RSS ${Math.round(rssBefore / 2 ** 20)} MiB before, ${Math.round(rssPeak / 2 ** 20)} MiB peak`)
}

t.test('embedded default', async t => { await load(t, {}) })

t.test('SQS and DynamoDB emulators', async t => {
  await load(t, {
    queue: sqsQueue({ queueUrl: emulators.queueUrl, client: emulators.sqs, receiveBatchSize: 1 }),
    store: dynamoDbStore({ tableName: emulators.tableName, client: emulators.dynamodb }),
    consume: true
  })
})
