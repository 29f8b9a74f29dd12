import t, { type Test } from 'tap'
import { errors, memoryStore, sqsQueue, type SqsJobQueue } from '../../src/index.js'
import { decodeMessage, messageDigest } from '../../src/job/message.js'
import { buildTestApp, closeTestApp, type TestApp } from '../helpers/app.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { delivery, RecordingQueue } from '../helpers/recording-queue.js'
import { spyStore } from '../helpers/spy-store.js'

// A job's timeline against SQS's, on a fake clock: hours pass in no time. The queue is driven by
// hand as SQS would drive it (each failed receive comes back after the delay the consumer chose,
// a crashed batch after the visibility timeout, the DLQ after maxReceiveCount receives), with the
// SQS adapter's own redelivery policy, retention and redrive settings.
const HOUR = 3_600_000
const sqs = (options: { maxReceiveCount?: number, messageRetentionSeconds?: number } = {}): SqsJobQueue =>
  sqsQueue({ queueUrl: 'http://127.0.0.1:9/000000000000/jobs', ...options }) // never called: the test delivers

/** A RecordingQueue with the SQS adapter's redelivery schedule and delivery window. */
function queueLike (adapter: SqsJobQueue): RecordingQueue {
  return Object.assign(new RecordingQueue(), { redelivery: adapter.redelivery, deliveryWindowSeconds: adapter.deliveryWindowSeconds })
}

async function setup (t: Test, adapter: SqsJobQueue, outageUntil = 0): Promise<{ test: TestApp, clock: FakeClock, queue: RecordingQueue, body: string, id: string }> {
  const clock = new FakeClock()
  const memory = memoryStore({ clock })
  // The store is down until `outageUntil` (fake time): every claim fails as DynamoDB's would.
  const store = spyStore(memory, {
    claim: async (id, claim) => {
      if (clock.now() < outageUntil) throw new errors.BackendError('DynamoDB UpdateItemCommand: ServiceUnavailable')
      return await memory.claim(id, claim)
    }
  })
  const queue = queueLike(adapter)
  const test = await buildTestApp({ queue, store, clock, waitSeconds: 0 })
  t.teardown(() => closeTestApp(test))
  await test.app.inject({ url: '/job/timeline?open=1', headers: { prefer: 'respond-async' } })
  const body = queue.sent[0] as string
  return { test, clock, queue, body, id: decodeMessage(body).id }
}

t.test('the SQS defaults: the receives before the DLQ span an hour of outage; a job record outlives the retention', async t => {
  const adapter = sqs()
  t.equal(adapter.maxReceiveCount, 10)
  t.ok(adapter.outageToleranceSeconds >= 3600, `an outage of ${Math.round(adapter.outageToleranceSeconds / 60)} minutes loses nothing`)
  const delays = Array.from({ length: 9 }, (_, i) => adapter.redelivery.delaySeconds(i + 1))
  t.ok(delays.every(delay => delay <= 43_200), 'each within what ChangeMessageVisibility takes')
  t.equal(adapter.deliveryWindowSeconds, 345_600, 'SQS\'s default retention')
})

t.test('a 20-minute store outage: the message keeps coming back, within maxReceiveCount, and the job then runs once', async t => {
  const adapter = sqs()
  const { test, clock, body, id } = await setup(t, adapter, Date.now() + 20 * 60_000)
  let receives = 0
  for (;;) {
    receives += 1
    t.ok(receives <= adapter.maxReceiveCount, `receive ${receives} is still before the DLQ`)
    if (receives > adapter.maxReceiveCount) break
    const disposition = await test.app.longRunning.handle(delivery(body, receives))
    if (disposition.ack) break
    await clock.advance(disposition.delaySeconds * 1000)
  }
  t.equal(test.runs.get('timeline'), 1, 'ran once, after the outage')
  t.match(await test.app.longRunning.store.get(id), { status: 'done', response: { statusCode: 201 } })
})

t.test('three crashed Lambda batches, each record back after the 5,400 s visibility timeout: the job ends with the contract\'s 502, never a 404', async t => {
  const { test, clock, body, id } = await setup(t, sqs())
  for (let crash = 1; crash <= 3; crash++) {
    // The invocation claims the job until its deadline, then dies with the whole batch.
    const claim = await test.app.longRunning.store.claim(id, { owner: `dead-${crash}`, leaseUntil: clock.now() + 900_000, now: clock.now(), messageDigest: messageDigest(JSON.parse(body)) })
    t.ok(claim.claimed, `crash ${crash}: claimed`)
    await clock.advance(5_400_000)
  }
  t.same(await test.app.longRunning.handle(delivery(body, 4)), { ack: true })
  t.match(await test.app.longRunning.store.get(id), { status: 'done', response: { statusCode: 502 } }, '4.5 hours on, the record is still there')
  const answer = await test.app.inject(`/async-response/${id}`)
  t.equal(answer.statusCode, 502)
  t.equal(answer.json().code, 'FST_LONG_RUNNING_ATTEMPTS_EXHAUSTED')
})

t.test('an outage past the tolerance sends the message to the DLQ; redriven ten hours later it still runs', async t => {
  const adapter = sqs({ messageRetentionSeconds: 1_209_600 })
  const { test, clock, body, id } = await setup(t, adapter, Date.now() + 3 * HOUR)
  for (let receive = 1; receive <= adapter.maxReceiveCount; receive++) {
    const disposition = await test.app.longRunning.handle(delivery(body, receive))
    t.notOk(disposition.ack, `receive ${receive}: handed back`)
    if (!disposition.ack) await clock.advance(disposition.delaySeconds * 1000)
  }
  // maxReceiveCount reached: SQS moves it to the DLQ. An operator redrives it ten hours later.
  await clock.advance(10 * HOUR)
  t.same(await test.app.longRunning.handle(delivery(body, 1)), { ack: true })
  t.equal(test.runs.get('timeline'), 1)
  t.match(await test.app.longRunning.store.get(id), { status: 'done', response: { statusCode: 201 } })
})
