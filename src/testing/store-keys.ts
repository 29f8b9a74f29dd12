import { randomBytes } from 'node:crypto'
import { newJobId } from '../core/job-id.js'
import { FakeClock } from './fake-clock.js'
import { lease, response, soon, type StoreCheck } from './store-fixtures.js'

// Idempotency keys: one reservation holds a key, until it expires, or until the result of the
// job it names expires.

const newKey = (): string => randomBytes(32).toString('base64url')

export const racingReservations: StoreCheck = async (t, { make }) => {
  const store = await make()
  const key = newKey()
  const racers = Array.from({ length: 12 }, (_, i) => ({ key, jobId: newJobId(), fingerprint: `fp${i % 2}`, expiresAt: soon() }))
  const holders = await Promise.all(racers.map(async racer => await store.reserveKey(racer)))
  const winner = holders[0]
  t.ok(racers.some(racer => racer.jobId === winner?.jobId), 'one of them')
  t.same(holders, holders.map(() => winner), 'every racer is told the same holder, with its fingerprint')
  t.same(await store.reserveKey({ ...racers[0], jobId: newJobId() } as typeof racers[0]), winner, 'it holds')
  const other = { key: newKey(), jobId: newJobId(), fingerprint: 'fp', expiresAt: soon() }
  t.same(await store.reserveKey(other), other, 'keys are independent')

  const lapsing = { key: newKey(), jobId: newJobId(), fingerprint: 'old', expiresAt: Date.now() - 1000 }
  t.same(await store.reserveKey(lapsing), lapsing)
  const next = { ...lapsing, jobId: newJobId(), fingerprint: 'new', expiresAt: soon() }
  t.same(await store.reserveKey(next), next, 'an expired reservation is free again, deleted or not')
}

export const keyLivesWithResult: StoreCheck = async (t, { make }) => {
  const clock = new FakeClock()
  const store = await make(clock)
  const far = clock.now() + 14 * 86_400_000
  const resultAt = clock.now() + 1000
  const keyed = async (): Promise<{ key: string, id: string }> => {
    const key = newKey()
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
  const retry = (key: string): { key: string, jobId: string, fingerprint: string, expiresAt: number } => ({ key, jobId: newJobId(), fingerprint: 'another', expiresAt: far })
  for (const { key, id } of [completed, cancelled, other]) t.equal((await store.reserveKey(retry(key))).jobId, id, 'held while the result lives')

  await clock.advance(1000)
  for (const [name, { key }] of Object.entries({ completed, cancelled })) {
    const next = retry(key)
    t.same(await store.reserveKey(next), next, `${name}: the key is free once the result expired`)
  }
  t.equal((await store.reserveKey(retry(other.key))).jobId, other.id, 'another job\'s reservation keeps its own expiry')
}

export const keyFreedByDelete: StoreCheck = async (t, { make }) => {
  const store = await make()
  const key = newKey()
  const id = newJobId()
  t.equal((await store.reserveKey({ key, jobId: id, fingerprint: 'fp', expiresAt: soon() })).jobId, id)
  await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon(), key })
  // What the HTTP side does when it could not queue the job: the client got a 503.
  await store.delete(id)
  t.equal(await store.get(id), undefined, 'the job is gone')
  t.match(await store.claim(id, lease('w')), { claimed: false }, 'nothing to claim')
  t.equal(await store.cancel(id, response(Buffer.from('cancelled')), soon()), false, 'nothing to cancel')
  const retry = { key, jobId: newJobId(), fingerprint: 'another request', expiresAt: soon() }
  t.same(await store.reserveKey(retry), retry, 'its key is free: a retry with it, whatever its request, is a new request')
  await store.delete(id)
  t.same(await store.reserveKey({ ...retry, jobId: newJobId() }), retry, 'deleting the job again leaves the key\'s new reservation alone')
  // A job created under a key whose reservation names another job leaves that reservation alone.
  const stray = newJobId()
  await store.create({ id: stray, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon(), key })
  await store.delete(stray)
  t.same(await store.reserveKey({ ...retry, jobId: newJobId(), fingerprint: 'a third' }), retry, 'another job\'s reservation stays')
}
