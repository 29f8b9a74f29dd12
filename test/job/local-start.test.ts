import t, { type Test } from 'tap'
import { BackendError } from '../../src/errors.js'
import { memoryQueue, memoryStore, type JobQueue, type JobRecord, type JobStore, type LongRunningOptions } from '../../src/index.js'
import { decodeMessage, type JobMessage } from '../../src/job/message.js'
import { buildTestApp, closeTestApp } from '../helpers/app.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { Gate } from '../helpers/gate.js'

// A container that consumes a shared queue runs the jobs it accepts itself while it has slots
// free (src/job/local-start.ts): created claimed, a backup message delayed by the lease.
// The shared queue is played by `memoryQueue({ shared: true })`, on a fake clock with the store:
// leases (3 s), backup delays and redeliveries pass when the test moves time and not before,
// while retry back-offs (under a second) pass at once. Every call to the queue and the store is
// recorded. What only SQS and DynamoDB decide is in local-start-aws.test.ts.

type Call =
  | { op: 'send', delaySeconds: number, message: JobMessage }
  /** What a consumer decided about a delivery: `ack` deletes the message. */
  | { op: 'ack' | 'retry', message: JobMessage }
  | { op: 'create', record: JobRecord }
  | { op: 'claim' | 'renew' | 'setProgress' | 'complete' | 'cancel' | 'delete', id: string }

/** A shared queue and a store on one fake clock, every call that succeeded recorded, `faults` failing the next ones of an op. */
function backends ({ retryDelaySeconds = 0 } = {}) {
  const clock = new FakeClock({ autoAdvanceUpToMs: 999 })
  const shared = memoryQueue({ shared: true, clock, retryDelaySeconds })
  const sharedStore = memoryStore({ clock })
  const calls: Call[] = []
  const watchers = new Set<(call: Call) => void>()
  /** Failures still to inject, by op; and how many were. */
  const faults = new Map<string, number>()
  const injected = new Map<string, number>()
  /** What an injected failure throws: the store unreachable, unless a test says otherwise. */
  let failure = (op: string): Error => new BackendError(`${op} failed (injected)`)
  /** Runs before each `create`: a test may hold it there. */
  let beforeCreate = async (): Promise<void> => {}
  const record = (call: Call): void => {
    calls.push(call)
    for (const watcher of [...watchers]) watcher(call)
  }
  const fault = (op: string): void => {
    const left = faults.get(op) ?? 0
    if (left === 0) return
    faults.set(op, left - 1)
    injected.set(op, (injected.get(op) ?? 0) + 1)
    throw failure(op)
  }
  /** The queue and store one app sees: the shared ones, recorded. */
  const forApp = (): { queue: JobQueue, store: JobStore } => {
    const queue: JobQueue = {
      maxMessageBytes: shared.maxMessageBytes,
      inProcess: false,
      ...(shared.redelivery === undefined ? {} : { redelivery: shared.redelivery }),
      send: async (body, options) => {
        fault('send')
        await shared.send(body, options)
        record({ op: 'send', delaySeconds: options?.delaySeconds ?? 0, message: decodeMessage(body) })
      },
      consume: (handler, options) => shared.consume(async delivery => {
        const disposition = await handler(delivery)
        record({ op: disposition.ack ? 'ack' : 'retry', message: decodeMessage(delivery.body) })
        return disposition
      }, options),
      close: async () => await shared.close?.()
    }
    const writes = (op: 'claim' | 'renew' | 'setProgress' | 'complete' | 'cancel' | 'delete') =>
      async (id: string, ...rest: unknown[]): Promise<never> => {
        fault(op)
        const result = await (sharedStore[op] as (...args: unknown[]) => Promise<never>).call(sharedStore, id, ...rest)
        record({ op, id })
        return result
      }
    const store: JobStore = {
      create: async job => {
        await beforeCreate()
        fault('create')
        const created = await sharedStore.create(job)
        record({ op: 'create', record: created })
        return created
      },
      reserveKey: async reservation => await sharedStore.reserveKey(reservation),
      get: async id => await sharedStore.get(id),
      claim: writes('claim'),
      renew: writes('renew'),
      setProgress: writes('setProgress'),
      complete: writes('complete'),
      cancel: writes('cancel'),
      delete: writes('delete'),
      watch: (id, listener) => (sharedStore.watch as NonNullable<JobStore['watch']>).call(sharedStore, id, listener)
    }
    return { queue, store }
  }
  return {
    clock,
    shared,
    sharedStore,
    calls,
    faults,
    injected,
    forApp,
    holdCreates (hook: () => Promise<void>): void { beforeCreate = hook },
    failWith (make: (op: string) => Error): void { failure = make },
    /** Resolves at the first call from now on that `match` accepts. */
    async next<C extends Call> (match: (call: Call) => call is C): Promise<C> {
      return await new Promise(resolve => {
        const watcher = (call: Call): void => {
          if (!match(call)) return
          watchers.delete(watcher)
          resolve(call)
        }
        watchers.add(watcher)
      })
    }
  }
}
type Backends = ReturnType<typeof backends>

async function container (t: Test, c: Backends, options: LongRunningOptions = {}) {
  const test = await buildTestApp({ ...c.forApp(), clock: c.clock, consume: true, waitSeconds: 30, leaseSeconds: 3, ...options })
  t.teardown(() => closeTestApp(test))
  return test
}

type Send = Extract<Call, { op: 'send' }>
const isSend = (call: Call): call is Send => call.op === 'send'
const isAck = (call: Call): call is Extract<Call, { op: 'ack' }> => call.op === 'ack'
const isCreate = (call: Call): call is Extract<Call, { op: 'create' }> => call.op === 'create'
const sends = (c: Backends) => c.calls.filter(isSend).map(({ delaySeconds, message }) => ({ delaySeconds, message }))
const writes = (c: Backends) => c.calls.filter(call => ['create', 'claim', 'renew', 'setProgress', 'complete', 'cancel'].includes(call.op))

t.test('with a slot free, the job runs where it was accepted: created claimed, no claim, a backup dropped once the job is done', async t => {
  const c = backends()
  const test = await container(t, c)
  test.gates.open('here')
  const response = await test.app.inject({ method: 'POST', url: '/job/here', payload: 'the body', headers: { 'content-type': 'text/plain' } })
  t.equal(response.statusCode, 201)
  t.equal(response.body, 'the body')
  const id = response.headers['x-job-id'] as string
  t.match(sends(c), [{ delaySeconds: 3, message: { id, backup: true, request: { method: 'POST' } } }], 'one message: the backup, invisible for the lease')
  t.same(writes(c).map(call => call.op), ['create', 'complete'], 'two writes before the answer: created claimed, completed')
  t.match(writes(c)[0], { record: { status: 'running', attempt: 1 } })
  const backupDone = c.next(isAck)
  await c.clock.advance(2999)
  t.same(c.calls.filter(isAck), [], 'the backup stays away for the whole lease')
  await c.clock.advance(1)
  await backupDone
  t.equal(test.runs.get('here'), 1, 'the backup found the job done and was deleted')
  t.equal(sends(c).length, 1, 'and not sent again')
})

t.test('delays sent are whole seconds: a lease of 3.5 s delays the backup 4 s, a back-off of 0.5 s delays the requeue 1 s', async t => {
  // The queue refuses a fractional delay as SQS does (the queue contract checks both).
  const c = backends({ retryDelaySeconds: 0.5 })
  const test = await container(t, c, { leaseSeconds: 3.5 })
  // Its four tries at storing the result fail, and not for an outage (which would be tried on
  // while the claim holds): the attempt goes back to the queue after the back-off.
  c.faults.set('complete', 4)
  c.failWith(op => new Error(`${op} refused (injected)`))
  const requeued = c.next((call): call is Send => isSend(call) && call.delaySeconds !== 4)
  const pending = test.app.inject('/job/rounded?open=1')
  const again = await requeued
  // The requeued message comes a second later and claims the job at once, the failed attempt
  // having given its claim back: the next attempt runs.
  await c.clock.advance(1000)
  const response = await pending
  t.equal(response.statusCode, 201, 'stored by the next attempt')
  t.match(sends(c)[0], { delaySeconds: 4, message: { backup: true } })
  t.equal(again.delaySeconds, 1)
  t.equal(again.message.backup, undefined)
  t.equal(test.runs.get('rounded'), 2)
})

t.test('a backup that finds its job still running goes out again, delayed, without counting a receive', async t => {
  const c = backends()
  const test = await container(t, c)
  const pending = test.app.inject('/job/long')
  await test.ran('long')
  const rearmedCall = c.next(isSend)
  await c.clock.advance(3000)
  const rearmed = await rearmedCall
  t.match(rearmed.message, { backup: true })
  // What is left of the lease, rounded up: a renewal landing during the refused claim may add one second.
  t.ok(rearmed.delaySeconds >= 1 && rearmed.delaySeconds <= 4, `for what is left of the lease (${String(rearmed.delaySeconds)} s)`)
  t.same(c.calls.filter(call => call.op === 'retry'), [], 'acknowledged, not handed back: no receive counted')
  test.gates.open('long')
  t.equal((await pending).statusCode, 201)
  t.equal(test.runs.get('long'), 1)
})

t.test('with every slot taken, a job takes the queue', async t => {
  const c = backends()
  const test = await container(t, c, { concurrency: 1 })
  const first = test.app.inject('/job/first')
  await test.ran('first')
  const queued = c.next(isSend)
  const second = test.app.inject('/job/second?open=1')
  const message = (await queued).message
  t.equal(message.backup, undefined, 'sent at once, not as a backup')
  test.gates.open('first')
  for (const response of await Promise.all([first, second])) t.equal(response.statusCode, 201)
  t.same([test.runs.get('first'), test.runs.get('second')], [1, 1])
})

t.test('app.close() with a job running here: it goes to the queue at once, and another worker delivers it', async t => {
  const c = backends()
  const test = await container(t, c)
  const pending = test.app.inject('/job/moved')
  await test.ran('moved')
  c.faults.set('send', 1)
  const requeued = c.next((call): call is Send => isSend(call) && call.delaySeconds === 0)
  const closing = closeTestApp(test)
  t.equal((await pending).statusCode, 303, 'its client is told where to ask')
  const message = (await requeued).message
  t.equal(message.backup, undefined, 'sent at once, not as a backup')
  t.equal(c.injected.get('send'), 1, 'on the second try')
  await closing
  const worker = await buildTestApp({ ...c.forApp(), clock: c.clock, consume: true })
  t.teardown(() => closeTestApp(worker))
  worker.gates.open('moved')
  const response = await worker.app.inject(`/async-response/${message.id}`)
  t.equal(response.statusCode, 201)
  t.equal(worker.runs.get('moved'), 1)
})

t.test('a job accepted as the app closes never starts here: its claim is released and it goes to the queue at once', async t => {
  const c = backends()
  // Longer than the test's timeout: a request that waited for its job would fail the test.
  const test = await container(t, c, { waitSeconds: 900 })
  const created = new Gate()
  const held = new Gate()
  c.holdCreates(async () => {
    held.open()
    await created.opened
  })
  const pending = test.app.inject('/job/late?open=1')
  await held.opened
  await closeTestApp(test)
  const requeued = c.next((call): call is Send => isSend(call) && call.delaySeconds === 0)
  created.open()
  const { id } = (await requeued).message
  t.equal(test.runs.get('late'), undefined, 'not run here')
  t.match(await c.sharedStore.get(id), { status: 'running', attempt: 1, leaseUntil: 0 }, 'the claim released')
  t.equal((await pending).statusCode, 303, 'its client is told where to ask at once, not after waitSeconds')
})

t.test('the backup cannot be sent: 503, no job left, the handler never ran', async t => {
  const c = backends()
  c.faults.set('send', 3)
  const test = await container(t, c)
  const created = c.next(isCreate)
  const response = await test.app.inject('/job/unsent?open=1')
  t.equal(response.statusCode, 503)
  t.equal(response.headers['retry-after'], '1')
  const id = (await created).record.id
  t.equal(await test.app.longRunning.store.get(id), undefined, 'no phantom job')
  t.equal(test.runs.get('unsent'), undefined)
  t.equal(test.app.longRunning.stats().running, 0)
})

t.test('the record cannot be created: 503, the handler never ran, and the backup finds no job', async t => {
  const c = backends()
  c.faults.set('create', 1)
  const test = await container(t, c)
  const dropped = c.next(isAck)
  const response = await test.app.inject('/job/uncreated?open=1')
  t.equal(response.statusCode, 503)
  t.equal(test.runs.get('uncreated'), undefined)
  await c.clock.advance(3000)
  await dropped
  t.equal(test.runs.get('uncreated'), undefined, 'the backup of a job never created is dropped')
})

t.test('a job with an idempotency key takes the queue', async t => {
  const c = backends()
  const test = await container(t, c)
  const response = await test.app.inject({ method: 'POST', url: '/job/keyed?open=1', payload: 'k', headers: { 'content-type': 'text/plain', 'idempotency-key': 'key-1' } })
  t.equal(response.statusCode, 201)
  t.match(sends(c), [{ delaySeconds: 0, message: { backup: undefined } }])
})
