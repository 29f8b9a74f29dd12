import fastify from 'fastify'
import t from 'tap'
import { memoryStore, type JobStore } from '../../src/index.js'
import { BackendError, JobCancelledError } from '../../src/errors.js'
import { errorResponse } from '../../src/core/error-response.js'
import { decodeMessage, messageDigest } from '../../src/job/message.js'
import { Lease } from '../../src/job/lease.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { buildTestApp, closeTestApp } from '../helpers/app.js'
import { delivery, RecordingQueue } from '../helpers/recording-queue.js'
import { spyStore } from '../helpers/spy-store.js'

// A worker whose lease renewals fail: tried again promptly while the lease holds, and once it
// lapses with none through, the attempt stops there and then, before any other worker may claim
// the job, and stores nothing. Generic code (src/job/lease.ts), driven here on the memory store
// with renewals failing on demand and the fake clock: no sleep decides anything.

const LEASE_SECONDS = 3
const LEASE_MS = LEASE_SECONDS * 1000

/** How the spied store's renewals answer: through, refused by a failing store, or never. */
type Renewals = 'through' | 'failing' | 'hanging'

interface Setup {
  test: Awaited<ReturnType<typeof buildTestApp>>
  clock: FakeClock
  memory: JobStore
  queue: RecordingQueue
  renewals: { mode: Renewals, tries: number, failuresLeft: number }
  completions: string[]
  /** Each handler run's signal, in the order the runs started. */
  signals: AbortSignal[]
}

async function setup (): Promise<Setup> {
  const clock = new FakeClock()
  const memory = memoryStore({ clock })
  const renewals = { mode: 'through' as Renewals, tries: 0, failuresLeft: 0 }
  const completions: string[] = []
  const signals: AbortSignal[] = []
  const store = spyStore(memory, {
    renew: async (id, owner, leaseUntil) => {
      renewals.tries += 1
      if (renewals.mode === 'hanging' && leaseUntil > 0) return await new Promise<boolean>(() => {})
      if (renewals.mode === 'failing' || renewals.failuresLeft > 0) {
        renewals.failuresLeft -= 1
        throw new BackendError('store unreachable')
      }
      return await memory.renew(id, owner, leaseUntil)
    },
    complete: async (id, owner, response, expiresAt) => {
      completions.push(owner)
      return await memory.complete(id, owner, response, expiresAt)
    }
  })
  const queue = new RecordingQueue()
  const test = await buildTestApp({ queue, store, clock, waitSeconds: 0, leaseSeconds: LEASE_SECONDS }, (app, gates, count) => {
    app.get('/work', { longRunning: true }, async (request) => {
      count('work')
      signals.push(request.longRunning?.signal as AbortSignal)
      await gates.get('work').opened
      return { done: true }
    })
  })
  t.teardown(() => closeTestApp(test))
  const accepted = await test.app.inject({ url: '/work' })
  if (accepted.statusCode !== 303) throw new Error(`expected 303, got ${accepted.statusCode}`)
  return { test, clock, memory, queue, renewals, completions, signals }
}

const idOf = (s: Setup): string => decodeMessage(s.queue.sent[0] as string).id

/** Another worker's claim with the job's own message, at `now` on that worker's clock. */
async function claimElsewhere (s: Setup, now: number): Promise<boolean> {
  const body = s.queue.sent[0] as string
  const claim = await s.memory.claim(idOf(s), { owner: 'B', leaseUntil: now + LEASE_MS, now, messageDigest: messageDigest(JSON.parse(body)) })
  return claim.claimed
}

t.test('renewals that fail for a while are tried again within the lease: the claim holds, the job runs once', async t => {
  const s = await setup()
  const handled = s.test.app.longRunning.handle(delivery(s.queue.sent[0] as string))
  await s.test.ran('work')
  s.renewals.failuresLeft = 3
  await s.clock.advance(LEASE_MS / 3)
  t.equal(s.renewals.tries, 1, 'the first renewal, a third into the lease, fails')
  // 200, 300, 300 ms apart: the back-off grows up to a tenth of the lease.
  await s.clock.advance(200)
  await s.clock.advance(300)
  t.equal(s.renewals.tries, 3)
  await s.clock.advance(300)
  t.equal(s.renewals.tries, 4, 'the fourth try gets through')
  t.equal((await s.memory.get(idOf(s)))?.leaseUntil, s.clock.now() + LEASE_MS, 'a lease from that renewal')
  // Three leases more on renewals that go through: the attempt is never stopped.
  await s.clock.advance(3 * LEASE_MS)
  t.notOk(s.signals[0]?.aborted, 'the handler runs on')
  s.test.gates.open('work')
  t.same(await handled, { ack: true })
  t.equal(s.test.runs.get('work'), 1, 'ran once')
  t.match(await s.memory.get(idOf(s)), { status: 'done', response: { statusCode: 200 } })
})

for (const mode of ['failing', 'hanging'] as const) {
  t.test(`renewals ${mode === 'failing' ? 'failing' : 'never answered'} past the lease: the signal aborts with LEASE_LOST as the lease lapses, before another worker can claim; nothing stored`, async t => {
    const s = await setup()
    const id = idOf(s)
    const handled = s.test.app.longRunning.handle(delivery(s.queue.sent[0] as string))
    await s.test.ran('work')
    const until = (await s.memory.get(id))?.leaseUntil as number
    s.renewals.mode = mode
    await s.clock.advance(until - s.clock.now() - 1)
    t.ok(s.renewals.tries >= (mode === 'failing' ? 5 : 1), `tried ${s.renewals.tries} times`)
    t.notOk(s.signals[0]?.aborted, 'a millisecond before the lapse, the attempt still runs')
    t.notOk(await claimElsewhere(s, s.clock.now()), 'and no other worker can claim')
    await s.clock.advance(1)
    t.match(s.signals[0]?.reason, { code: 'FST_LONG_RUNNING_LEASE_LOST' }, 'at the lapse the signal aborts')
    t.notOk(await claimElsewhere(s, s.clock.now()), 'still before any other worker can claim')
    t.same(await handled, { ack: false, delaySeconds: 0 }, 'the message comes back')
    // The handler ignores its signal and answers later: its answer is kept by nobody.
    const renewedBefore = s.renewals.tries
    s.test.gates.open('work')
    await s.clock.advance(2 * LEASE_MS)
    t.equal(s.renewals.tries, renewedBefore, 'no renewal after the lapse')
    t.same(s.completions, [], 'the lapsed attempt stored nothing')
    t.match(await s.memory.get(id), { status: 'running', attempt: 1 }, 'the job waits for its next attempt')

    // The next delivery takes the job over, and runs it once more (after the first stopped).
    s.renewals.mode = 'through'
    t.same(await s.test.app.longRunning.handle(delivery(s.queue.sent[0] as string, 2)), { ack: true })
    t.equal(s.test.runs.get('work'), 2)
    t.equal(s.completions.length, 1, 'one result stored, by the new attempt')
    t.match(await s.memory.get(id), { status: 'done', attempt: 2, response: { statusCode: 200 } })
  })
}

t.test('a renewal refused because another process cancelled the job aborts with JOB_CANCELLED; the message is acknowledged', async t => {
  const s = await setup()
  const id = idOf(s)
  const handled = s.test.app.longRunning.handle(delivery(s.queue.sent[0] as string))
  await s.test.ran('work')
  // What DELETE /async-response/:id does on another replica: this process's runner hears nothing.
  t.ok(await s.memory.cancel(id, errorResponse(new JobCancelledError()), s.clock.now() + 60_000))
  await s.clock.advance(LEASE_MS / 3)
  t.match(s.signals[0]?.reason, { code: 'FST_LONG_RUNNING_JOB_CANCELLED' }, 'the handler learns why')
  t.same(await handled, { ack: true })
  t.same(s.completions, [])
  t.match(await s.memory.get(id), { status: 'done', response: { statusCode: 409 } }, 'the cancellation stays')
})

t.test('a renewal refused because another worker took the job over aborts with LEASE_LOST', async t => {
  const s = await setup()
  const handled = s.test.app.longRunning.handle(delivery(s.queue.sent[0] as string))
  await s.test.ran('work')
  // A worker whose clock runs a lease ahead: it sees the lease lapsed, and claims.
  t.ok(await claimElsewhere(s, s.clock.now() + LEASE_MS + 1))
  await s.clock.advance(LEASE_MS / 3)
  t.match(s.signals[0]?.reason, { code: 'FST_LONG_RUNNING_LEASE_LOST' })
  t.same(await handled, { ack: false, delaySeconds: 0 })
  s.test.gates.open('work')
  t.same(s.completions, [], 'nothing stored by the stale worker')
})

t.test('a lease lost or stopped stays so: keep() on a lost claim reports it at once; answers that come after stop() change nothing', async t => {
  const clock = new FakeClock()
  const memory = memoryStore({ clock })
  t.teardown(async () => await memory.close?.())
  const answers: Array<(outcome: boolean | Error) => void> = []
  let refusalRead: (() => void) | undefined
  const store = spyStore(memory, {
    renew: async (id, owner, leaseUntil) => leaseUntil === 0
      ? await memory.renew(id, owner, leaseUntil)
      : await new Promise<boolean>((resolve, reject) => answers.push(outcome => { if (outcome instanceof Error) reject(outcome); else resolve(outcome) })),
    get: async id => { await new Promise<void>(resolve => { refusalRead = resolve }); return await memory.get(id) }
  })
  const log = fastify().log
  const lease = (): Lease => new Lease('job', 'me', delivery('{}'), { store, leaseSeconds: LEASE_SECONDS, clock }, log, { until: clock.now() + LEASE_MS, renewed: true })
  const reasons: unknown[] = []

  const ended = lease()
  await ended.end()
  ended.keep(reason => reasons.push(reason))
  t.match(reasons, [{ code: 'FST_LONG_RUNNING_LEASE_LOST' }], 'a claim given back is lost for any keeping after')

  const turn = async (): Promise<void> => await new Promise(resolve => setImmediate(resolve))
  const armed = clock.pending
  for (const outcome of [true, new BackendError('late'), false]) {
    const kept = lease()
    kept.keep(reason => reasons.push(reason))
    await clock.advance(LEASE_MS / 3)
    // A refusal is answered before stop(), and its record read after.
    if (outcome === false) answers.shift()?.(outcome)
    await turn()
    kept.stop()
    answers.shift()?.(outcome)
    await turn()
    refusalRead?.()
    await turn()
    t.equal(clock.pending, armed, `a renewal ${outcome === false ? 'refused, its record read' : `answered ${outcome === true ? 'true' : 'with a failure'}`} after stop() arms nothing`)
  }
  t.equal(reasons.length, 1, 'nor reports a loss')
})

t.test('a renewal failing once the lease is past, its lapse timer not yet run (a busy event loop), loses the claim there and then', async t => {
  // Retry back-offs move this clock at once, without running the lapse timer: as a real clock
  // does while the event loop is busy with the failures.
  const clock = new FakeClock({ autoAdvanceUpToMs: 500 })
  const memory = memoryStore({ clock })
  t.teardown(async () => await memory.close?.())
  const store = spyStore(memory, { renew: async () => { throw new BackendError('store unreachable') } })
  const log = fastify().log
  const until = clock.now() + LEASE_MS
  const lease = new Lease('job', 'me', delivery('{}'), { store, leaseSeconds: LEASE_SECONDS, clock }, log, { until, renewed: true })
  const armed = clock.pending
  const reason = new Promise<Error>(resolve => lease.keep(resolve))
  await clock.advance(LEASE_MS / 3)
  t.match(await reason, { code: 'FST_LONG_RUNNING_LEASE_LOST' })
  t.ok(clock.now() >= until, 'once the lease is past')
  t.notOk(lease.holds(clock.now()))
  t.equal(clock.pending, armed, 'and nothing is armed any more')
})
