import fastify from 'fastify'
import t, { type Test } from 'tap'
import { memoryQueue, memoryStore, JobStatus, type JobEndEvent, type JobStore, type ResultBodies } from '../../src/index.js'
import { newJobId } from '../../src/core/job-id.js'
import { RunRegistry } from '../../src/job/context.js'
import { encodeMessage, type JobMessage } from '../../src/job/message.js'
import { errorResponse } from '../../src/core/error-response.js'
import { JobRunner } from '../../src/job/runner.js'
import { BackendError, JobCancelledError } from '../../src/errors.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { Gate } from '../helpers/gate.js'
import { delivery } from '../helpers/recording-queue.js'
import { spyStore } from '../helpers/spy-store.js'

// The runner on its own, with the memory adapters and the fake clock: what becomes of a job's
// message for each way its attempt can end. The app is a plain Fastify app; no plugin.

const LEASE_SECONDS = 30

interface Setup {
  runner: JobRunner
  store: JobStore
  queue: ReturnType<typeof memoryQueue>
  clock: FakeClock
  ended: JobEndEvent[]
  /** Opened by the test to let `GET /slow` answer; `started` opens when it begins. */
  release: Gate
  started: Gate
  /** A pending job's message, its record created in the store. */
  job (fields?: Partial<JobMessage>, claim?: { owner: string, leaseUntil: number }): Promise<JobMessage>
}

/** `wrap`: the store as the runner sees it (`spyStore`), the test keeping the real one. */
async function setup (t: Test, options: { results?: ResultBodies, wrap?: (store: JobStore) => JobStore } = {}): Promise<Setup> {
  // Back-offs of retried writes cost nothing; timeouts and lease renewals wait for `advance()`.
  const clock = new FakeClock({ autoAdvanceUpToMs: 5_000 })
  const store = memoryStore({ clock })
  const queue = memoryQueue()
  const release = new Gate()
  const started = new Gate()
  const app = fastify()
  app.get('/fast', async () => ({ ok: true }))
  app.get('/slow', async () => {
    started.open()
    await release.opened
    return 'late'
  })
  app.get('/big', async () => 'x'.repeat(100))
  await app.ready()
  const ended: JobEndEvent[] = []
  const runner = new JobRunner(app, {
    store: options.wrap?.(store) ?? store,
    runs: new RunRegistry(),
    leaseSeconds: LEASE_SECONDS,
    redelivery: queue.redelivery!,
    clock,
    onJobEnd: event => ended.push(event),
    results: options.results,
    queue
  })
  t.teardown(async () => {
    release.open()
    runner.shutdown()
    await app.close()
    await queue.close?.()
    await store.close?.()
  })
  const job = async (fields: Partial<JobMessage> = {}, claim?: { owner: string, leaseUntil: number }): Promise<JobMessage> => {
    const id = newJobId()
    await store.create({ id, waitSeconds: 0, createdAt: clock.now(), expiresAt: clock.now() + 3_600_000, ...(claim === undefined ? {} : { claim }) })
    return {
      id,
      timeoutSeconds: 60,
      maxAttempts: 3,
      resultTtlSeconds: 60,
      enqueuedAt: clock.now(),
      request: { method: 'GET', url: '/fast', headers: {} },
      ...fields
    }
  }
  return { runner, store, queue, clock, ended, release, started, job }
}

const slow = { request: { method: 'GET', url: '/slow', headers: {} } }

t.test('a job runs once and its response is stored; its message is acknowledged', async t => {
  const { runner, store, ended, job } = await setup(t)
  const message = await job()
  t.same(await runner.handle(delivery(encodeMessage(message))), { ack: true })
  const record = await store.get(message.id)
  t.equal(record?.status, JobStatus.done)
  t.equal(record?.response?.statusCode, 200)
  t.same(JSON.parse(String(record?.response?.body)), { ok: true })
  t.match(ended, [{ id: message.id, outcome: 'completed', statusCode: 200, attempt: 1 }])
})

t.test('a message whose job another worker is running: an ordinary one comes back when that lease ends, a backup goes out again', async t => {
  const { runner, queue, clock, job } = await setup(t)
  const message = await job({}, { owner: 'elsewhere', leaseUntil: clock.now() + 12_000 })
  t.same(await runner.handle(delivery(encodeMessage(message))), { ack: false, delaySeconds: 12 }, 'back when the lease ends')
  t.equal(queue.queued?.(), 0, 'nothing sent')
  t.same(await runner.handle(delivery(encodeMessage({ ...message, backup: true }))), { ack: true }, 'the backup itself is dropped…')
  t.equal(queue.queued?.(), 1, '…once it is in the queue again, without counting a receive')
})

t.test('a job whose workers kept dying ends with a stored 502 once its attempts are used up', async t => {
  const { runner, store, ended, clock, job } = await setup(t)
  // A worker claimed the only attempt and died: its lease ran out.
  const message = await job({ maxAttempts: 1 }, { owner: 'dead', leaseUntil: clock.now() - 1 })
  t.same(await runner.handle(delivery(encodeMessage(message), 2)), { ack: true })
  const record = await store.get(message.id)
  t.equal(record?.response?.statusCode, 502)
  t.match(JSON.parse(String(record?.response?.body)), { code: 'FST_LONG_RUNNING_ATTEMPTS_EXHAUSTED' })
  t.match(ended, [{ outcome: 'attempts-exhausted', attempt: 2 }])
})

t.test('an attempt that outlives its timeout ends the job with a stored 504, never retried', async t => {
  const { runner, store, ended, clock, started, job } = await setup(t)
  const message = await job({ ...slow, timeoutSeconds: 60 })
  const handled = runner.handle(delivery(encodeMessage(message)))
  await started.opened
  await clock.advance(60_000)
  t.same(await handled, { ack: true })
  const record = await store.get(message.id)
  t.equal(record?.response?.statusCode, 504)
  t.match(JSON.parse(String(record?.response?.body)), { code: 'FST_LONG_RUNNING_JOB_TIMEOUT' })
  t.match(ended, [{ outcome: 'timed-out' }])
})

t.test('the lease is renewed every third of it, the delivery with it; once lost, the message comes back at once', async t => {
  const { runner, store, clock, started, job } = await setup(t)
  const message = await job(slow)
  const first = delivery(encodeMessage(message))
  const handled = runner.handle(first)
  await started.opened
  await clock.advance(LEASE_SECONDS * 1000 / 3)
  t.same(first.extended, [LEASE_SECONDS], 'the delivery kept hidden as long as the lease')
  // Another worker takes the job over, as it would once this one's lease had lapsed.
  const stolen = await store.claim(message.id, { owner: 'thief', leaseUntil: clock.now() + 60_000, now: clock.now() + 3_600_000 })
  t.ok(stolen.claimed)
  await clock.advance(LEASE_SECONDS * 1000 / 3)
  t.same(await handled, { ack: false, delaySeconds: 0 })
  t.equal((await store.get(message.id))?.owner, 'thief', 'the new owner keeps its claim')
})

t.test('a job cancelled while it runs: the attempt stops and its message is acknowledged', async t => {
  const { runner, store, clock, started, ended, job } = await setup(t)
  const message = await job(slow)
  const handled = runner.handle(delivery(encodeMessage(message)))
  await started.opened
  t.ok(await store.cancel(message.id, errorResponse(new JobCancelledError()), clock.now() + 60_000))
  runner.cancel(message.id)
  t.same(await handled, { ack: true })
  t.equal((await store.get(message.id))?.response?.statusCode, 409, 'the cancellation stays the answer')
  t.same(ended, [], 'no end event: this process stored nothing')
})

t.test('a result body the bucket refused: the claim is given back and the message returns after the back-off', async t => {
  const results: ResultBodies = {
    thresholdBytes: 10,
    put: async () => { throw new Error('bucket down') },
    url: async () => 'https://example.invalid/',
    delete: async () => {}
  }
  const { runner, store, queue, clock, job } = await setup(t, { results })
  const message = await job({ request: { method: 'GET', url: '/big', headers: {} } })
  t.same(await runner.handle(delivery(encodeMessage(message), 3)), { ack: false, delaySeconds: queue.redelivery!.delaySeconds(3) })
  const next = await store.claim(message.id, { owner: 'next', leaseUntil: clock.now() + 60_000, now: clock.now() })
  t.match(next, { claimed: true, attempt: 2 }, 'the next delivery claims it at once')
})

t.test('a process that is shutting down hands a job created claimed for it back at once', async t => {
  const { runner, store, clock, job } = await setup(t)
  const message = await job({}, { owner: 'me', leaseUntil: clock.now() + 60_000 })
  runner.shutdown()
  t.same(await runner.runClaimed(message, { owner: 'me', leaseUntil: clock.now() + 60_000 }, clock.now()), { ack: false, delaySeconds: 0 })
  t.match(await store.claim(message.id, { owner: 'next', leaseUntil: clock.now() + 60_000, now: clock.now() }), { claimed: true })
})

t.test('a result the store fails to take more than four times is stored by the same attempt while its claim holds: one run', async t => {
  let tries = 0
  const { runner, store, ended, job } = await setup(t, {
    wrap: store => spyStore(store, {
      complete: async (...args) => {
        if (++tries <= 6) throw new BackendError('store unreachable (injected)')
        return await store.complete(...args)
      }
    })
  })
  const message = await job()
  t.same(await runner.handle(delivery(encodeMessage(message))), { ack: true })
  t.equal(tries, 7, 'tried on past the usual four')
  t.equal((await store.get(message.id))?.response?.statusCode, 200)
  t.match(ended, [{ outcome: 'completed', attempt: 1 }], 'by the first attempt: the handler ran once')
})

t.test('the claim is renewed while a result waits for the store', async t => {
  const blocked = new Gate()
  const { runner, store, clock, job } = await setup(t, {
    wrap: store => spyStore(store, {
      complete: async (...args) => {
        blocked.open()
        if (clock.now() < start + LEASE_SECONDS * 1000) throw new BackendError('store unreachable (injected)')
        return await store.complete(...args)
      }
    })
  })
  const start = clock.now()
  const message = await job()
  const first = delivery(encodeMessage(message))
  const handled = runner.handle(first)
  await blocked.opened
  // Renewals wait for `advance()`; the back-offs between tries pass by themselves.
  await clock.advance(LEASE_SECONDS * 1000 / 3)
  t.same(first.extended, [LEASE_SECONDS], 'the delivery kept hidden with the claim')
  t.same(await handled, { ack: true })
  t.equal((await store.get(message.id))?.status, JobStatus.done)
})

t.test('a store that takes no write for a whole lease: the attempt has failed, its claim is given back, the message returns', async t => {
  let tries = 0
  const { runner, store, queue, clock, ended, job } = await setup(t, {
    wrap: store => spyStore(store, {
      complete: async () => {
        tries++
        throw new BackendError('store unreachable (injected)')
      }
    })
  })
  const message = await job()
  const start = clock.now()
  t.same(await runner.handle(delivery(encodeMessage(message), 2)), { ack: false, delaySeconds: queue.redelivery!.delaySeconds(2) })
  t.ok(clock.now() - start >= LEASE_SECONDS * 1000, `tried until the lease lapsed (${tries} tries over ${clock.now() - start} ms)`)
  t.same(ended, [])
  t.match(await store.claim(message.id, { owner: 'next', leaseUntil: clock.now() + 60_000, now: clock.now() }), { claimed: true, attempt: 2 }, 'the next delivery runs it')
})

t.test('a shutdown ends the tries at storing a result: the claim is given back and the message returns at once', async t => {
  let tries = 0
  const { runner, store, queue, clock, job } = await setup(t, {
    wrap: store => spyStore(store, {
      complete: async () => {
        // The fifth try is the first past the usual four: the worker shuts down meanwhile.
        if (++tries === 5) runner.shutdown()
        throw new BackendError('store unreachable (injected)')
      }
    })
  })
  const message = await job()
  t.same(await runner.handle(delivery(encodeMessage(message))), { ack: false, delaySeconds: queue.redelivery!.delaySeconds(1) })
  t.equal(tries, 5, 'no try after the shutdown')
  t.match(await store.claim(message.id, { owner: 'next', leaseUntil: clock.now() + 60_000, now: clock.now() }), { claimed: true, attempt: 2 }, 'given back: the next delivery claims it at once')
})
