import fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { memoryStore } from '../../src/index.js'
import { newJobId } from '../../src/core/job-id.js'
import { WorkerStoppingError, JobCancelledError, LeaseLostError } from '../../src/errors.js'
import { Attempt, type AttemptEnd, type AttemptPlan } from '../../src/job/attempt.js'
import { RunRegistry } from '../../src/job/context.js'
import { Lease, type KeptLease } from '../../src/job/lease.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { Gate } from '../helpers/gate.js'
import { delivery } from '../helpers/recording-queue.js'

// One attempt on its own: the request replayed through a plain Fastify app, and the signal that
// stops it for each of its causes, with the fake clock and a lease the test holds in its hand.

/** A lease the test controls: it says whether it is kept, and loses the claim on demand. */
class HandLease implements KeptLease {
  kept = false
  #onLost: ((reason: Error) => void) | undefined
  keep (onLost: (reason: Error) => void): void {
    this.kept = true
    this.#onLost = onLost
  }

  stop (): void {
    this.kept = false
  }

  lose (reason: Error = new LeaseLostError()): void {
    this.#onLost?.(reason)
  }
}

interface Setup { app: FastifyInstance, clock: FakeClock, runs: RunRegistry, started: Gate, release: Gate, signals: AbortSignal[] }

async function setup (t: Test): Promise<Setup> {
  const clock = new FakeClock()
  const started = new Gate()
  const release = new Gate()
  const signals: AbortSignal[] = []
  const app = fastify()
  app.post('/echo', async (request, reply) => await reply.code(201).header('x-seen', 'yes').send(request.body))
  app.get('/slow', async () => {
    started.open()
    await release.opened
    return 'late'
  })
  await app.ready()
  t.teardown(async () => {
    release.open()
    await app.close()
  })
  return { app, clock, runs: new RunRegistry(), started, release, signals }
}

function attemptOf ({ app, runs, clock }: Setup, lease: KeptLease, plan: Partial<AttemptPlan> = {}): Attempt {
  return new Attempt(app, runs, clock, {
    id: newJobId(),
    attempt: 1,
    request: { method: 'GET', url: '/slow', headers: {} },
    timeoutSeconds: 60,
    lease,
    progress: () => {},
    log: app.log,
    ...plan
  })
}

const reasonOf = (end: AttemptEnd): string | undefined => end.kind === 'stopped' ? end.reason.code : undefined

t.test('the route\'s response comes back whole: status, headers and body bytes; the lease is kept meanwhile, then let go', async t => {
  const test = await setup(t)
  const lease = new HandLease()
  const body = Buffer.from('{"a":1}')
  const attempt = attemptOf(test, lease, { request: { method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, body } })
  const run = attempt.run()
  t.ok(lease.kept, 'kept while the attempt runs')
  const end = await run
  t.equal(end.kind, 'response')
  if (end.kind !== 'response') return
  t.equal(end.response.statusCode, 201)
  t.equal(end.response.headers['x-seen'], 'yes')
  t.same(Buffer.concat(end.response.chunks), Buffer.from('{"a":1}'))
  t.equal(end.response.bytes, body.length)
  t.notOk(lease.kept, 'let go once it ended')
  t.ok(test.runs.idle, 'the run is no longer registered')
  t.equal(test.clock.pending, 0, 'no timer left behind')
})

t.test('an attempt past its timeout stops with JOB_TIMEOUT, even while its handler goes on', async t => {
  const test = await setup(t)
  const run = attemptOf(test, new HandLease(), { timeoutSeconds: 5 }).run()
  await test.started.opened
  await test.clock.advance(5_000)
  t.equal(reasonOf(await run), 'FST_LONG_RUNNING_JOB_TIMEOUT')
  t.ok(test.runs.idle, 'unregistered at once, not when the handler ends')
})

t.test('a lost claim stops the attempt with the lease\'s reason: LEASE_LOST, or JOB_CANCELLED when the job was cancelled elsewhere', async t => {
  const test = await setup(t)
  const lease = new HandLease()
  const run = attemptOf(test, lease).run()
  await test.started.opened
  lease.lose()
  t.equal(reasonOf(await run), 'FST_LONG_RUNNING_LEASE_LOST')
  const other = await setup(t)
  const cancelled = new HandLease()
  const stopped = attemptOf(other, cancelled).run()
  await other.started.opened
  cancelled.lose(new JobCancelledError())
  t.equal(reasonOf(await stopped), 'FST_LONG_RUNNING_JOB_CANCELLED')
})

t.test('with a deadline (Lambda) no lease is kept, and the attempt stops a second before it', async t => {
  const test = await setup(t)
  const lease = new HandLease()
  const run = attemptOf(test, lease, { deadline: test.clock.now() + 10_000 }).run()
  await test.started.opened
  t.notOk(lease.kept, 'no renewals to pay for')
  await test.clock.advance(9_000)
  t.equal(reasonOf(await run), 'FST_LONG_RUNNING_WORKER_DEADLINE')
})

t.test('stop: the first reason stays, even one given before the attempt runs', async t => {
  const test = await setup(t)
  const attempt = attemptOf(test, new HandLease())
  attempt.stop(new WorkerStoppingError())
  attempt.stop(new JobCancelledError())
  t.equal(reasonOf(await attempt.run()), 'FST_LONG_RUNNING_WORKER_STOPPING')
})

t.test('a replay the app cannot run (it closed) fails, and is told apart from a stop', async t => {
  const test = await setup(t)
  await test.app.close()
  const end = await attemptOf(test, new HandLease(), { request: { method: 'GET', url: '/echo', headers: {} } }).run()
  t.equal(end.kind, 'failed')
})

t.test('a lease renews the claim and extends the delivery every third of it, reports its loss, and ends at once; it holds until then', async t => {
  const clock = new FakeClock()
  const store = memoryStore({ clock })
  t.teardown(async () => await store.close?.())
  const id = newJobId()
  await store.create({ id, waitSeconds: 0, createdAt: clock.now(), expiresAt: clock.now() + 3_600_000, claim: { owner: 'me', leaseUntil: clock.now() + 30_000 } })
  const brought = delivery('{}')
  const app = fastify()
  const lease = new Lease(id, 'me', brought, { store, leaseSeconds: 30, clock }, app.log, { until: clock.now() + 30_000, renewed: true })
  t.ok(lease.holds(clock.now() + 29_999), 'the claim holds until its lease lapses')
  t.notOk(lease.holds(clock.now() + 30_000))
  let lost = 0
  const timers = clock.pending
  lease.keep(() => { lost++ })
  await clock.advance(10_000)
  t.same(brought.extended, [30])
  t.equal((await store.get(id))?.leaseUntil, clock.now() + 30_000, 'the claim lasts a lease from the renewal')
  t.ok(lease.holds(clock.now() + 29_999), 'and holds as long')
  t.ok((await store.claim(id, { owner: 'thief', leaseUntil: clock.now() + 30_000, now: clock.now() + 40_001 })).claimed)
  await clock.advance(10_000)
  t.equal(lost, 1, 'the loss is reported')
  t.notOk(lease.holds(clock.now()), 'a lost claim holds no more')
  t.same(brought.extended, [30], 'a lost claim extends nothing')
  lease.stop()
  t.equal(clock.pending, timers, 'stopped: no renewal armed')

  const other = newJobId()
  await store.create({ id: other, waitSeconds: 0, createdAt: clock.now(), expiresAt: clock.now() + 3_600_000, claim: { owner: 'me', leaseUntil: clock.now() + 30_000 } })
  const ended = new Lease(other, 'me', brought, { store, leaseSeconds: 30, clock }, app.log, { until: clock.now() + 30_000, renewed: true })
  await ended.end()
  t.notOk(ended.holds(clock.now()), 'an ended claim holds no more')
  t.ok((await store.claim(other, { owner: 'next', leaseUntil: clock.now() + 30_000, now: clock.now() })).claimed, 'ended: the next worker claims it now')
})
