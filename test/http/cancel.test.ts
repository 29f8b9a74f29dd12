import { CreateQueueCommand } from '@aws-sdk/client-sqs'
import t, { type Test } from 'tap'
import { startEmulators } from '../../example/emulators.js'
import { dynamoDbStore, sqsQueue, type LongRunningOptions } from '../../src/index.js'
import { buildTestApp, closeTestApp, untilAborted, type TestApp } from '../helpers/app.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { pollUntil } from '../helpers/poll.js'
import { Gate } from '../helpers/gate.js'
import { delivery, RecordingQueue } from '../helpers/recording-queue.js'

// DELETE /async-response/:id on both backends: a pending job never starts, a running job's
// signal aborts, and the id answers the final FST_LONG_RUNNING_JOB_CANCELLED.
const emulators = await startEmulators()
t.teardown(() => emulators.close())

/** An app whose `/abortable` job waits for its signal and records why it stopped. */
async function app (t: Test, options: LongRunningOptions, aborted: Gate, reasons: string[]): Promise<TestApp> {
  const test = await buildTestApp({ waitSeconds: 0, bindTo: request => request.headers['x-user'] as string | undefined, ...options }, (app) => {
    app.get('/abortable', { longRunning: true }, async (request) => {
      const reason = await untilAborted(request.longRunning?.signal) as { code: string }
      reasons.push(reason.code)
      aborted.open()
      return 'stopped'
    })
  })
  t.teardown(() => closeTestApp(test))
  return test
}

t.test('embedded: cancelling a running job aborts its signal at once; the id answers 409 cancelled', async t => {
  const aborted = new Gate()
  const reasons: string[] = []
  const test = await app(t, {}, aborted, reasons)
  const accepted = await test.app.inject({ url: '/abortable', headers: { 'x-user': 'ann' } })
  const location = accepted.headers.location as string
  const target = location.split('?')[0] as string
  t.equal((await test.app.inject({ method: 'DELETE', url: target, headers: { 'x-user': 'bob' } })).statusCode, 404, 'not bob\'s to cancel')
  t.equal((await test.app.inject({ method: 'DELETE', url: '/async-response/nope', headers: { 'x-user': 'ann' } })).statusCode, 404)
  const cancelled = await test.app.inject({ method: 'DELETE', url: target, headers: { 'x-user': 'ann' } })
  t.equal(cancelled.statusCode, 204)
  await aborted.opened
  t.same(reasons, ['FST_LONG_RUNNING_JOB_CANCELLED'])
  const result = await test.app.inject({ url: location, headers: { 'x-user': 'ann' } })
  t.equal(result.statusCode, 409)
  t.match(result.json(), { code: 'FST_LONG_RUNNING_JOB_CANCELLED' })
  const again = await test.app.inject({ method: 'DELETE', url: target, headers: { 'x-user': 'ann' } })
  t.equal(again.statusCode, 409)
  t.equal(again.json().code, 'FST_LONG_RUNNING_JOB_FINISHED')
})

t.test('a pending job that is cancelled never starts', async t => {
  const queue = new RecordingQueue()
  const test = await buildTestApp({ queue, waitSeconds: 0 })
  t.teardown(() => closeTestApp(test))
  const accepted = await test.app.inject('/job/never?open=1')
  t.equal((await test.app.inject({ method: 'DELETE', url: (accepted.headers.location as string).split('?')[0] as string })).statusCode, 204)
  t.same(await test.app.longRunning.handle(delivery(queue.sent[0] as string)), { ack: true })
  t.equal(test.runs.get('never'), undefined)
})

t.test('SQS and DynamoDB: a worker in another process notices at its next lease renewal', async t => {
  const { QueueUrl: queueUrl } = await emulators.sqs.send(new CreateQueueCommand({ QueueName: 'cancel' }))
  const backends = (): LongRunningOptions => ({
    queue: sqsQueue({ queueUrl: queueUrl as string, client: emulators.sqs, receiveBatchSize: 1 }),
    store: dynamoDbStore({ tableName: emulators.tableName, client: emulators.dynamodb })
  })
  const aborted = new Gate()
  const reasons: string[] = []
  const http = await app(t, { ...backends(), consume: false }, new Gate(), [])
  const clock = new FakeClock()
  const worker = await app(t, { ...backends(), consume: true, leaseSeconds: 3, clock }, aborted, reasons)
  await worker.app.ready()
  const accepted = await http.app.inject({ url: '/abortable', headers: { prefer: 'respond-async' } })
  const location = accepted.headers.location as string
  await pollUntil(async () => (await http.app.inject({ url: location, headers: { prefer: 'respond-async' } })).json().status, status => status === 'running')
  t.equal((await http.app.inject({ method: 'DELETE', url: location.split('?')[0] as string })).statusCode, 204)
  t.notOk(aborted.isOpen, 'the worker elsewhere learns nothing until it renews')
  await clock.armed(2) // the attempt's timeout and its first renewal
  await clock.advance(1000)
  await aborted.opened
  t.same(reasons, ['FST_LONG_RUNNING_JOB_CANCELLED'], 'the worker learns the job was cancelled, by its stable code (its refused renewal reads the record)')
  const result = await http.app.inject(location)
  t.equal(result.statusCode, 409)
  t.equal(result.json().code, 'FST_LONG_RUNNING_JOB_CANCELLED')
})
