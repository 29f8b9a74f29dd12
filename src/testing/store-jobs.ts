import { randomBytes } from 'node:crypto'
import { newJobId } from '../core/job-id.js'
import type { JobRecord } from '../index.js'
import { lease, response, soon, type StoreCheck } from './store-fixtures.js'

// A job's life in a store: created, claimed under a lease, completed or cancelled, expired.

export const createAndGet: StoreCheck = async (t, { make }) => {
  const store = await make()
  const id = newJobId()
  const expiresAt = soon()
  const createdAt = Date.now() - 5
  const created = await store.create({ id, waitSeconds: 7, createdAt, expiresAt, binding: 'digest' })
  t.same(created, { id, status: 'pending', attempt: 0, waitSeconds: 7, binding: 'digest', createdAt, expiresAt }, 'create returns the record it wrote')
  t.match(await store.get(id), created)
  t.equal(await store.get(newJobId()), undefined)
  await t.rejects(store.create({ id, waitSeconds: 7, createdAt: Date.now(), expiresAt: soon() }), { code: 'FST_LONG_RUNNING_JOB_EXISTS' })
}

export const expiredIsGone: StoreCheck = async (t, { make }) => {
  const store = await make()
  const id = newJobId()
  await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: Date.now() - 1000 })
  t.equal(await store.get(id), undefined)
  t.same(await store.claim(id, lease('w')), { claimed: false })
}

export const expiredIdReused: StoreCheck = async (t, { make }) => {
  const store = await make()
  const id = newJobId()
  await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: Date.now() - 1000 })
  t.match(await store.create({ id, waitSeconds: 2, createdAt: Date.now(), expiresAt: soon() }), { id, status: 'pending', waitSeconds: 2 })
  t.match(await store.get(id), { status: 'pending', attempt: 0 })
}

export const claims: StoreCheck = async (t, { make }) => {
  const store = await make()
  const id = newJobId()
  await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon() })
  t.match(await store.claim(id, lease('w1')), { claimed: true, attempt: 1 })
  const busy = await store.claim(id, lease('w2'))
  t.match(busy, { claimed: false, record: { status: 'running', owner: 'w1', attempt: 1 } })
  t.ok(!busy.claimed && Number(busy.record?.leaseUntil) > Date.now(), 'the refusal tells the live lease')
  t.equal(await store.renew(id, 'w1', Date.now() - 1), true, 'owner renews (here: lets the lease lapse)')
  t.equal(await store.renew(id, 'w2', soon()), false, 'no one else can')
  t.match(await store.claim(id, lease('w2')), { claimed: true, attempt: 2 })
  t.equal(await store.renew(id, 'w1', soon()), false, 'the old owner lost it')
  t.equal(await store.setProgress(id, 'w1', { fraction: 0.9 }), false)
  t.equal(await store.setProgress(id, 'w2', { fraction: 0.25, message: 'quarter' }), true)
  t.match(await store.get(id), { status: 'running', attempt: 2, progress: { fraction: 0.25, message: 'quarter' } })
}

export const onlyItsMessageClaims: StoreCheck = async (t, { make }) => {
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
}

export const createdClaimed: StoreCheck = async (t, { make }) => {
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
}

export const completeWhileClaimed: StoreCheck = async (t, { make }) => {
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
}

export const cancel: StoreCheck = async (t, { make }) => {
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
}
