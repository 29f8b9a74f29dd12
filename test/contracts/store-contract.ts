import { randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import { newJobId } from '../../src/core/job-id.js'
import type { Clock, JobRecord, JobStore, StoredResponse } from '../../src/index.js'
import { isCancellable, isClaimable, isExpired, isOwnedBy } from '../../src/core/job-state.js'
import { FakeClock } from '../helpers/clock.js'

/**
 * The contract every JobStore passes: the in-memory store and the DynamoDB store run the
 * very same assertions (`test/adapters/memory-adapters.test.ts`, `test/adapters/aws-adapters.test.ts`).
 */
export function storeContract (
  t: Test,
  /** A new store, on `clock` when given (its expiry, and DynamoDB's `:now`). */
  make: (clock?: Clock) => Promise<JobStore>,
  /**
   * Items the backend holds for a job besides its record (DynamoDB: chunk items of bodies too
   * large for the record's item); `outOfLine` says the 900 KiB bodies below must have made some.
   */
  residue: { count: (id: string) => Promise<number>, outOfLine: boolean } = { count: async () => 0, outOfLine: false }
): void {
  const soon = (): number => Date.now() + 60_000
  const lease = (owner: string, ms = 30_000) => ({ owner, leaseUntil: Date.now() + ms, now: Date.now() })
  const response = (body: Buffer): StoredResponse => ({
    statusCode: 201,
    headers: { 'content-type': 'application/octet-stream', 'set-cookie': ['a=1', 'b=2'], 'x-one': 'one' },
    body
  })

  t.test('create, then get the pending job; unknown ids are undefined; ids are unique', async t => {
    const store = await make()
    const id = newJobId()
    const expiresAt = soon()
    const createdAt = Date.now() - 5
    const created = await store.create({ id, waitSeconds: 7, createdAt, expiresAt, binding: 'digest' })
    t.same(created, { id, status: 'pending', attempt: 0, waitSeconds: 7, binding: 'digest', createdAt, expiresAt }, 'create returns the record it wrote')
    t.match(await store.get(id), created)
    t.equal(await store.get(newJobId()), undefined)
    await t.rejects(store.create({ id, waitSeconds: 7, createdAt: Date.now(), expiresAt: soon() }), { code: 'FST_LONG_RUNNING_JOB_EXISTS' })
  })

  t.test('an expired job is gone, whether or not the backend deleted it', async t => {
    const store = await make()
    const id = newJobId()
    await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: Date.now() - 1000 })
    t.equal(await store.get(id), undefined)
    t.same(await store.claim(id, lease('w')), { claimed: false })
  })

  t.test('an idempotency key: of racing reservations exactly one holds, until it expires', async t => {
    const store = await make()
    const key = randomBytes(32).toString('base64url')
    const racers = Array.from({ length: 12 }, (_, i) => ({ key, jobId: newJobId(), fingerprint: `fp${i % 2}`, expiresAt: soon() }))
    const holders = await Promise.all(racers.map(async racer => await store.reserveKey(racer)))
    const winner = holders[0]
    t.ok(racers.some(racer => racer.jobId === winner?.jobId), 'one of them')
    t.same(holders, holders.map(() => winner), 'every racer is told the same holder, with its fingerprint')
    t.same(await store.reserveKey({ ...racers[0], jobId: newJobId() } as typeof racers[0]), winner, 'it holds')
    const other = { key: randomBytes(32).toString('base64url'), jobId: newJobId(), fingerprint: 'fp', expiresAt: soon() }
    t.same(await store.reserveKey(other), other, 'keys are independent')

    const lapsing = { key: randomBytes(32).toString('base64url'), jobId: newJobId(), fingerprint: 'old', expiresAt: Date.now() - 1000 }
    t.same(await store.reserveKey(lapsing), lapsing)
    const next = { ...lapsing, jobId: newJobId(), fingerprint: 'new', expiresAt: soon() }
    t.same(await store.reserveKey(next), next, 'an expired reservation is free again, deleted or not')
  })

  t.test('a key expires with its job\'s result, completed or cancelled, not with its first expiry', async t => {
    const clock = new FakeClock()
    const store = await make(clock)
    const far = clock.now() + 14 * 86_400_000
    const resultAt = clock.now() + 1000
    const keyed = async (): Promise<{ key: string, id: string }> => {
      const key = randomBytes(32).toString('base64url')
      const id = newJobId()
      t.equal((await store.reserveKey({ key, jobId: id, fingerprint: 'fp', expiresAt: far })).jobId, id)
      await store.create({ id, waitSeconds: 1, createdAt: clock.now(), expiresAt: far, key })
      return { key, id }
    }
    const completed = await keyed()
    t.ok((await store.claim(completed.id, { owner: 'w', leaseUntil: clock.now() + 30_000, now: clock.now() })).claimed)
    t.ok(await store.complete(completed.id, 'w', response(Buffer.from('done')), resultAt))
    const cancelled = await keyed()
    t.ok(await store.cancel(cancelled.id, response(Buffer.from('cancelled')), resultAt))
    // A job created under a key whose reservation names another job leaves that reservation alone.
    const other = await keyed()
    const stray = newJobId()
    await store.create({ id: stray, waitSeconds: 1, createdAt: clock.now(), expiresAt: far, key: other.key })
    t.ok(await store.cancel(stray, response(Buffer.from('stray')), resultAt))
    const retry = (key: string) => ({ key, jobId: newJobId(), fingerprint: 'another', expiresAt: far })
    for (const { key, id } of [completed, cancelled, other]) t.equal((await store.reserveKey(retry(key))).jobId, id, 'held while the result lives')

    await clock.advance(1000)
    for (const [name, { key }] of Object.entries({ completed, cancelled })) {
      const next = retry(key)
      t.same(await store.reserveKey(next), next, `${name}: the key is free once the result expired`)
    }
    t.equal((await store.reserveKey(retry(other.key))).jobId, other.id, 'another job\'s reservation keeps its own expiry')
  })

  t.test('an expired job\'s id can be created again (a key whose job expired starts it anew)', async t => {
    const store = await make()
    const id = newJobId()
    await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: Date.now() - 1000 })
    t.match(await store.create({ id, waitSeconds: 2, createdAt: Date.now(), expiresAt: soon() }), { id, status: 'pending', waitSeconds: 2 })
    t.match(await store.get(id), { status: 'pending', attempt: 0 })
  })

  t.test('claims: one live lease at a time; a lapsed lease is taken over with the next attempt', async t => {
    const store = await make()
    const id = newJobId()
    await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon() })
    t.match(await store.claim(id, lease('w1')), { claimed: true, attempt: 1 })
    const busy = await store.claim(id, lease('w2'))
    t.match(busy, { claimed: false, record: { status: 'running', owner: 'w1', attempt: 1 } })
    t.ok(!busy.claimed && (busy.record?.leaseUntil ?? 0) > Date.now())
    t.equal(await store.renew(id, 'w1', Date.now() - 1), true, 'owner renews (here: lets the lease lapse)')
    t.equal(await store.renew(id, 'w2', soon()), false, 'no one else can')
    t.match(await store.claim(id, lease('w2')), { claimed: true, attempt: 2 })
    t.equal(await store.renew(id, 'w1', soon()), false, 'the old owner lost it')
    t.equal(await store.setProgress(id, 'w1', { fraction: 0.9 }), false)
    t.equal(await store.setProgress(id, 'w2', { fraction: 0.25, message: 'quarter' }), true)
    t.match(await store.get(id), { status: 'running', attempt: 2, progress: { fraction: 0.25, message: 'quarter' } })
  })

  t.test('only the message a job was accepted with claims it: any other changes nothing, in every state', async t => {
    const store = await make()
    const id = newJobId()
    await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon(), messageDigest: 'genuine' })
    t.same(await store.claim(id, { ...lease('forger'), messageDigest: 'forged' }), { claimed: false, mismatch: true })
    t.same(await store.claim(id, lease('forger')), { claimed: false, mismatch: true }, 'a claim without a digest is no exception')
    t.match(await store.get(id), { status: 'pending', attempt: 0 }, 'no attempt spent, no owner set')
    t.match(await store.claim(id, { ...lease('w1'), messageDigest: 'genuine' }), { claimed: true, attempt: 1 })
    t.same(await store.claim(id, { ...lease('forger'), messageDigest: 'forged' }), { claimed: false, mismatch: true }, 'running: refused as a mismatch, not told the lease')
    t.match(await store.get(id), { status: 'running', owner: 'w1', attempt: 1 })
    const older = newJobId()
    await store.create({ id: older, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon() })
    t.match(await store.claim(older, { ...lease('w'), messageDigest: 'any' }), { claimed: true }, 'a job of an older sender, without a digest: any claim')
  })

  t.test('a job created claimed runs its first attempt at once: a second claim waits for its lease', async t => {
    const store = await make()
    const id = newJobId()
    const createdAt = Date.now()
    const expiresAt = soon()
    const leaseUntil = Date.now() + 30_000
    const created = await store.create({ id, waitSeconds: 3, createdAt, expiresAt, claim: { owner: 'here', leaseUntil } })
    t.same(created, { id, status: 'running', attempt: 1, owner: 'here', leaseUntil, waitSeconds: 3, createdAt, expiresAt })
    t.same(await store.get(id), created)
    t.match(await store.claim(id, lease('backup')), { claimed: false, record: { status: 'running', owner: 'here', attempt: 1 } })
    t.equal(await store.renew(id, 'here', Date.now() - 1), true, 'the creator holds the claim (here: lets it lapse)')
    t.match(await store.claim(id, lease('backup')), { claimed: true, attempt: 2 }, 'a lapsed first lease is taken over like any other')
    t.equal(await store.complete(id, 'here', response(Buffer.from('late')), soon()), false, 'and the creator lost it')
  })

  t.test('complete only while holding the claim; a done job is never claimed again', async t => {
    const store = await make()
    const id = newJobId()
    await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon() })
    t.equal(await store.complete(id, 'nobody', response(Buffer.from('x')), soon()), false, 'pending: no owner yet')
    await store.claim(id, lease('w1', -1))
    await store.claim(id, lease('w2'))
    const body = randomBytes(1000)
    t.equal(await store.complete(id, 'w1', response(Buffer.from('stale')), soon()), false, 'a stale worker cannot overwrite')
    const expiresAt = Date.now() + 120_000
    t.equal(await store.complete(id, 'w2', response(body), expiresAt), true)
    const done = await store.get(id) as JobRecord
    t.match(done, { status: 'done', attempt: 2, expiresAt })
    t.same(done.response?.headers, response(body).headers)
    t.equal(done.response?.statusCode, 201)
    t.ok(done.response?.body.equals(body), 'byte-exact')
    t.match(await store.claim(id, lease('w3')), { claimed: false, record: { status: 'done' } })
    t.equal(await store.complete(id, 'w2', response(Buffer.from('again')), soon()), false, 'completes once')
  })

  t.test('responses up to 6 MiB and empty ones round-trip byte-exact', async t => {
    const store = await make()
    for (const size of [0, 300 * 1024, 6 * 1024 * 1024]) {
      const id = newJobId()
      await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon() })
      await store.claim(id, lease('w'))
      // Half random, half repetitive: both compressible and incompressible content.
      const body = Buffer.concat([randomBytes(size / 2), Buffer.alloc(size / 2, 'a')])
      t.equal(await store.complete(id, 'w', response(body), soon()), true)
      t.ok((await store.get(id))?.response?.body.equals(body), `${size} bytes`)
    }
    // Text that compresses well, inline and beyond a DynamoDB item once compressed.
    for (const size of [64 * 1024, 6 * 1024 * 1024]) {
      const id = newJobId()
      await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon() })
      await store.claim(id, lease('w'))
      const body = Buffer.from(Array.from({ length: size / 8 }, (_, i) => `${String(i % 1e6).padStart(6, '0')},\n`).join(''))
      t.equal(await store.complete(id, 'w', response(body), soon()), true)
      t.ok((await store.get(id))?.response?.body.equals(body), `${size} bytes of text`)
    }
  })

  t.test('a request kept in the store (claim-check) comes back with the claim, byte-exact', async t => {
    const store = await make()
    const id = newJobId()
    const body = randomBytes(2 * 1024 * 1024)
    const request = { method: 'POST', url: '/echo?x=1', headers: { 'content-type': 'application/x', cookie: 'c=1' }, body }
    await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon(), request })
    const claim = await store.claim(id, lease('w'))
    t.ok(claim.claimed && claim.request?.body?.equals(body))
    t.match(claim, { request: { method: 'POST', url: '/echo?x=1', headers: request.headers } })
    t.equal((await store.get(id) as JobRecord & { request?: unknown }).request, undefined, 'polling reads stay small')
  })

  t.test('cancel ends a pending or running job for good; a finished one stays as it is', async t => {
    const store = await make()
    const cancelled = response(Buffer.from('{"code":"cancelled"}'))
    const pending = newJobId()
    await store.create({ id: pending, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon() })
    t.equal(await store.cancel(pending, cancelled, soon()), true)
    t.match(await store.get(pending), { status: 'done', response: { statusCode: 201 } })
    t.match(await store.claim(pending, lease('w')), { claimed: false, record: { status: 'done' } }, 'never starts')
    t.equal(await store.cancel(pending, cancelled, soon()), false, 'once')

    const running = newJobId()
    await store.create({ id: running, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon() })
    await store.claim(running, lease('w'))
    t.equal(await store.cancel(running, cancelled, soon()), true)
    t.equal(await store.renew(running, 'w', soon()), false, 'the worker loses its claim')
    t.equal(await store.complete(running, 'w', response(Buffer.from('late')), soon()), false, '...and cannot overwrite')
    t.ok((await store.get(running))?.response?.body.equals(cancelled.body))

    const done = newJobId()
    await store.create({ id: done, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon() })
    await store.claim(done, lease('w'))
    await store.complete(done, 'w', response(Buffer.from('result')), soon())
    t.equal(await store.cancel(done, cancelled, soon()), false)
    t.equal((await store.get(done))?.response?.body.toString(), 'result')
    t.equal(await store.cancel(newJobId(), cancelled, soon()), false, 'unknown')
  })

  t.test('delete forgets the job and everything stored with it, before and after completion', async t => {
    const store = await make()
    const id = newJobId()
    await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon() })
    await store.delete(id)
    t.equal(await store.get(id), undefined)
    await store.delete(newJobId())

    // Large enough that a backend with an item size limit stores both bodies out of line.
    const big = randomBytes(900 * 1024)
    for (const stage of ['pending', 'done']) {
      const id = newJobId()
      await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon(), request: { method: 'POST', url: '/', headers: {}, body: big } })
      if (stage === 'done') {
        await store.claim(id, lease('w'))
        t.equal(await store.complete(id, 'w', response(big), soon()), true)
      }
      t.equal(await residue.count(id) > 0, residue.outOfLine, `${stage}: bodies stored out of line`)
      await store.delete(id)
      t.equal(await store.get(id), undefined, stage)
      t.equal(await residue.count(id), 0, `${stage}: nothing left behind`)
    }
  })

  t.test('getMany reads several jobs at once, leaving out unknown ones', async t => {
    const store = await make()
    t.type(store.getMany, 'function', 'both stores offer it')
    if (store.getMany === undefined) return
    const ids = Array.from({ length: 130 }, () => newJobId())
    for (const id of ids) await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon() })
    const unknown = newJobId()
    const found = await store.getMany([...ids, unknown])
    t.equal(found.size, ids.length)
    t.notOk(found.has(unknown))
    t.match(found.get(ids[0] as string), { status: 'pending' })
  })
  t.test('the job state machine: every (status, owner, lease, expiry) case decided as core/job-state.ts rules', async t => {
    // The memory store calls the rules; the DynamoDB store sends them as condition expressions
    // (dynamodb-conditions.ts). Both run this table, so both decide every case alike. The store
    // keeps time on a fake clock: expiry at `expiresAt` exactly is decided by the store's own now.
    const clock = new FakeClock()
    const store = await make(clock)
    const t0 = clock.now()
    const t1 = t0 + 1000
    const far = t1 + 60_000
    type State = Pick<JobRecord, 'status' | 'owner' | 'leaseUntil' | 'expiresAt'>
    const states: Record<string, State> = {
      pending: { status: 'pending', expiresAt: far },
      'running, lease live': { status: 'running', owner: 'a', leaseUntil: t1 + 30_000, expiresAt: far },
      'running, lease ends now': { status: 'running', owner: 'a', leaseUntil: t1, expiresAt: far },
      'running, lease lapsed': { status: 'running', owner: 'a', leaseUntil: t1 - 1, expiresAt: far },
      done: { status: 'done', expiresAt: far },
      'pending, expires now': { status: 'pending', expiresAt: t1 },
      'running, expires now': { status: 'running', owner: 'a', leaseUntil: t1 + 30_000, expiresAt: t1 }
    }
    const operations: Record<string, { rule: (state: State) => boolean, run: (id: string) => Promise<boolean> }> = {
      'claim(b)': { rule: state => isClaimable(state, t1), run: async id => (await store.claim(id, { owner: 'b', leaseUntil: t1 + 30_000, now: t1 })).claimed },
      'renew(a)': { rule: state => isOwnedBy(state, 'a'), run: async id => await store.renew(id, 'a', t1 + 30_000) },
      'renew(b)': { rule: state => isOwnedBy(state, 'b'), run: async id => await store.renew(id, 'b', t1 + 30_000) },
      'progress(a)': { rule: state => isOwnedBy(state, 'a'), run: async id => await store.setProgress(id, 'a', { fraction: 0.5 }) },
      'complete(a)': { rule: state => isOwnedBy(state, 'a'), run: async id => await store.complete(id, 'a', response(Buffer.from('a')), far) },
      'complete(b)': { rule: state => isOwnedBy(state, 'b'), run: async id => await store.complete(id, 'b', response(Buffer.from('b')), far) },
      cancel: { rule: state => isCancellable(state), run: async id => await store.cancel(id, response(Buffer.from('c')), far) }
    }
    // Each (state, operation) on a job of its own, set up at t0; then time moves to t1.
    const jobs = new Map<string, string>()
    for (const [name, state] of Object.entries(states)) {
      for (const operation of Object.keys(operations)) {
        const id = newJobId()
        jobs.set(`${name} / ${operation}`, id)
        await store.create({ id, waitSeconds: 1, createdAt: t0, expiresAt: state.expiresAt })
        if (state.status === 'pending') continue
        t.ok((await store.claim(id, { owner: 'a', leaseUntil: state.leaseUntil ?? t1, now: t0 })).claimed)
        if (state.status === 'done') t.ok(await store.complete(id, 'a', response(Buffer.from('done')), far))
      }
    }
    await clock.advance(t1 - t0)
    const decided: Record<string, string> = {}
    const ruled: Record<string, string> = {}
    for (const [name, state] of Object.entries(states)) {
      const row: string[] = []
      const expected: string[] = []
      for (const [operation, { rule, run }] of Object.entries(operations)) {
        row.push(await run(jobs.get(`${name} / ${operation}`) as string) ? 'y' : '-')
        expected.push(!isExpired(state, t1) && rule(state) ? 'y' : '-')
      }
      decided[name] = row.join(' ')
      ruled[name] = expected.join(' ')
    }
    t.same(decided, ruled, 'the store decides as the rules do')
    // The table itself, spelt out: claim(b) renew(a) renew(b) progress(a) complete(a) complete(b) cancel.
    t.same(ruled, {
      pending: 'y - - - - - y',
      'running, lease live': '- y - y y - y',
      'running, lease ends now': '- y - y y - y',
      'running, lease lapsed': 'y y - y y - y',
      done: '- - - - - - -',
      'pending, expires now': '- - - - - - -',
      'running, expires now': '- - - - - - -'
    })
  })
}
