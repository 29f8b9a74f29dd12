import t from 'tap'
import { dynamoDbStore, memoryQueue, memoryStore, s3Results, sqsQueue, type JobRecord, type JobStore } from '../../src/index.js'
import { newJobId } from '../../src/core/job-id.js'
import { queueContract, storeContract } from '../../src/testing/index.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { pollUntil } from '../helpers/poll.js'

const stores: JobStore[] = []
t.teardown(async () => { for (const store of stores) await store.close?.() })

t.test('memory store', async t => {
  storeContract(t, async clock => {
    const store = memoryStore({ clock })
    stores.push(store)
    return store
  })
})

t.test('a store with only the members the contract requires passes it too: getMany, watch and the budget are optional', async t => {
  const full = memoryStore()
  stores.push(full)
  t.type(full.getMany, 'function', 'the memory store offers getMany (the shared poller\'s batched read)')
  storeContract(t, async clock => {
    const store = memoryStore({ clock })
    stores.push(store)
    const required = ['create', 'reserveKey', 'get', 'claim', 'renew', 'setProgress', 'complete', 'cancel', 'delete'] as const
    return Object.fromEntries(required.map(name => [name, store[name].bind(store)])) as unknown as JobStore
  })
})

t.test('memory queue', async t => {
  queueContract(t, async () => memoryQueue({ maxMessageBytes: 64 * 1024, retryDelaySeconds: 0 }))
})

t.test('memory store: watchers are woken by every change, then told when the job is gone', async t => {
  const store = memoryStore({ sweepIntervalMs: 10 })
  stores.push(store)
  const id = newJobId()
  await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: Date.now() + 60_000 })
  const seen: Array<JobRecord | undefined> = []
  const stop = store.watch?.(id, record => seen.push(record))
  await store.claim(id, { owner: 'w', leaseUntil: Date.now() + 1000, now: Date.now() })
  await store.setProgress(id, 'w', { fraction: 1 })
  await store.complete(id, 'w', { statusCode: 200, headers: {}, body: Buffer.from('') }, Date.now() + 60_000)
  await store.delete(id)
  t.same(seen.map(record => record?.status), ['running', 'running', 'done', undefined])
  stop?.()
  await store.claim(id, { owner: 'w', leaseUntil: 0, now: 0 })
  t.equal(seen.length, 4, 'no calls after stop')
})

t.test('memory store: expired jobs are swept from memory, and their watchers told', async t => {
  const clock = new FakeClock()
  const store = memoryStore({ sweepIntervalMs: 5, clock })
  stores.push(store)
  const id = newJobId()
  const expiresAt = clock.now() + 20
  await store.create({ id, waitSeconds: 1, createdAt: clock.now(), expiresAt })
  const key = { key: 'k', jobId: id, fingerprint: 'f', expiresAt }
  await store.reserveKey(key)
  const gone = new Promise(resolve => store.watch?.(id, resolve))
  await clock.advance(25)
  t.equal(await gone, undefined)
  t.equal(await store.get(id), undefined)
  const next = { ...key, jobId: newJobId(), expiresAt: clock.now() + 60_000 }
  t.same(await store.reserveKey(next), next, 'its key swept with it')
})

const MiB = 1024 * 1024
const job = (bytes: number): Parameters<JobStore['create']>[0] => ({
  id: newJobId(),
  waitSeconds: 1,
  createdAt: Date.now(),
  expiresAt: Date.now() + 60_000,
  request: { method: 'POST', url: '/r', headers: {}, body: Buffer.alloc(bytes) }
})
const done = async (store: JobStore, id: string, bytes: number): Promise<void> => {
  await store.claim(id, { owner: 'w', leaseUntil: Date.now() + 60_000, now: Date.now() })
  await store.complete(id, 'w', { statusCode: 200, headers: {}, body: Buffer.alloc(bytes) }, Date.now() + 60_000)
}

t.test('memory store maxBytes: full means refused; delivered results go first, oldest delivery first', async t => {
  const store = memoryStore({ maxBytes: 8 * MiB })
  stores.push(store)
  const jobs = [job(2 * MiB), job(2 * MiB), job(2 * MiB)]
  for (const next of jobs) await store.create(next)
  await t.rejects(store.create(job(2 * MiB)), { code: 'FST_LONG_RUNNING_STORE_FULL', statusCode: 503 }, 'requests are never evicted')
  const [a, b, c] = jobs.map(next => next.id) as [string, string, string]
  for (const id of [a, b, c]) await done(store, id, MiB)
  await t.rejects(store.create(job(5.5 * MiB)), { code: 'FST_LONG_RUNNING_STORE_FULL' }, 'nor results nobody has read')
  store.delivered?.(b)
  store.delivered?.(a)
  store.delivered?.(b) // delivered again: now the most recent
  store.delivered?.('unknown')
  const d = job(5.5 * MiB)
  await store.create(d)
  t.equal(await store.get(a), undefined, 'the oldest delivery made room')
  t.ok(await store.get(b) !== undefined && await store.get(c) !== undefined)
  t.match(store.memory?.stats(), { storedJobs: 3, evictions: 1, unreadEvictions: 0, expired: 0 })
  t.ok((store.memory?.stats().storedBytes ?? Infinity) <= 8 * MiB)
  t.equal(store.memory?.heldBytes(), (store.memory?.stats().storedBytes ?? 0) - (MiB + 512), 'b is evictable, the rest is held')
  const held = store.memory?.heldBytes()
  store.delivered?.(d.id)
  t.equal(store.memory?.heldBytes(), held, 'a pending job is never evictable')

  // A result larger than what is left is stored all the same (the job ran), evicting b for it:
  // that made room enough, and c, unread, is kept.
  await done(store, d.id, 6.5 * MiB)
  t.equal(await store.get(b), undefined)
  t.equal((await store.get(c))?.response?.statusCode, 200)
  t.match(store.memory?.stats(), { storedJobs: 2, evictions: 2, unreadEvictions: 0 })
  await store.delete(c)
  await store.delete(d.id)
  t.match(store.memory?.stats(), { storedJobs: 0, storedBytes: 0 })
})

t.test('memory store maxBytes: when room is needed, results nobody read beyond half of it give way, oldest first, as 410 RESULT_EVICTED', async t => {
  const store = memoryStore({ maxBytes: 8 * MiB })
  stores.push(store)
  const ids: string[] = []
  const seen: Array<number | undefined> = []
  for (let i = 0; i < 4; i++) {
    const next = job(0)
    await store.create(next)
    ids.push(next.id)
    await store.claim(next.id, { owner: 'w', leaseUntil: Date.now() + 60_000, now: Date.now() })
    if (i === 0) store.watch?.(next.id, record => seen.push(record?.response?.statusCode))
    await store.complete(next.id, 'w', { statusCode: 200, headers: {}, body: Buffer.alloc(1.5 * MiB) }, Date.now() + 60_000)
  }
  const statuses = async (): Promise<Array<number | undefined>> => await Promise.all(ids.map(async id => (await store.get(id))?.response?.statusCode))
  t.same(await statuses(), [200, 200, 200, 200], 'kept while nobody needs the room')
  t.ok((store.memory?.heldBytes() ?? Infinity) <= 4 * MiB + 4096, 'what is held for sure: half the budget')

  // A request that could not fit even then is refused, and evicts nothing for it.
  await t.rejects(store.create(job(5 * MiB)), { code: 'FST_LONG_RUNNING_STORE_FULL' })
  t.same(await statuses(), [200, 200, 200, 200], 'nothing given way for nothing')
  // A new request needs room: the oldest unread results beyond half the budget give way.
  const pending = job(3 * MiB)
  await store.create(pending)
  t.same(await statuses(), [410, 200, 200, 200])
  t.same(seen, [200, 410], 'a waiter hears of it')
  const evicted = (await store.get(ids[0] as string))?.response
  t.match(JSON.parse(evicted?.body.toString() ?? ''), { statusCode: 410, code: 'FST_LONG_RUNNING_RESULT_EVICTED' })
  t.match(store.memory?.stats(), { storedJobs: 5, evictions: 0, unreadEvictions: 1 })
  await store.delete(pending.id)

  // The newest result is kept whole, even larger than the share: it is somebody's answer.
  const large = job(0)
  await store.create(large)
  await done(store, large.id, 5 * MiB)
  t.equal((await store.get(large.id))?.response?.body.length, 5 * MiB)
  t.same(await statuses(), [410, 410, 410, 200], 'as many as it needed gave way, oldest first; the 410s stay (they go last)')
  t.match(store.memory?.stats(), { unreadEvictions: 3, evictions: 0 })

  // Another large result: the older unread ones give way again, and the 410s still stay (a burst's
  // late readers learn that their results gave way, not that their jobs are unknown).
  const next = job(0)
  await store.create(next)
  await done(store, next.id, 5 * MiB)
  t.same(await statuses(), [410, 410, 410, 410])
})

t.test('memory store maxBytes: unread results no larger than their 410 go whole, and a flood of them cannot hold the budget', async t => {
  const store = memoryStore({ maxBytes: 64 * 1024 })
  stores.push(store)
  const ids: string[] = []
  for (let i = 0; i < 100; i++) {
    const next = job(0)
    await store.create(next)
    await done(store, next.id, 10)
    ids.push(next.id)
  }
  await store.create(job(20 * 1024))
  t.equal(await store.get(ids[0] as string), undefined, 'the oldest tiny result went whole')
  t.ok((await store.get(ids[99] as string)) !== undefined, 'the newest stays')
  t.ok((store.memory?.stats().unreadEvictions ?? 0) > 0)
  t.ok((store.memory?.stats().storedBytes ?? Infinity) <= 64 * 1024)
})

t.test('memory store maxBytes: key reservations count; a key whose job was never created is released', async t => {
  const clock = new FakeClock()
  const store = memoryStore({ maxBytes: 4096, clock, sweepIntervalMs: 1000 })
  stores.push(store)
  const reserve = async (key: string, jobId = newJobId(), expiresAt = clock.now() + 60_000): Promise<unknown> => await store.reserveKey({ key, jobId, fingerprint: 'f', expiresAt })
  const base = store.memory?.stats().storedBytes ?? 0
  await reserve('k1')
  t.equal(store.memory?.stats().storedBytes, base + 256)
  await reserve('k1')
  t.equal(store.memory?.stats().storedBytes, base + 256, 'a held key counts once')
  for (let i = 2; i <= 16; i++) await reserve(`k${i}`)
  await t.rejects(reserve('k17'), { code: 'FST_LONG_RUNNING_STORE_FULL' }, 'reservations are bounded by the budget')

  // A job that does not fit releases the key reserved for it.
  const full = memoryStore({ maxBytes: 2048, clock })
  stores.push(full)
  const id = newJobId()
  await full.reserveKey({ key: 'k', jobId: id, fingerprint: 'f', expiresAt: clock.now() + 60_000 })
  await t.rejects(full.create({ ...job(4096), id, key: 'k' }), { code: 'FST_LONG_RUNNING_STORE_FULL' })
  const other = newJobId()
  t.equal((await full.reserveKey({ key: 'k', jobId: other, fingerprint: 'g', expiresAt: clock.now() + 60_000 })).jobId, other, 'the key is free again')
  // A job removed before it ended (its message never went out) releases its key too; an ended one keeps it.
  await full.create({ ...job(0), id: other, key: 'k' })
  await full.delete(other)
  const third = newJobId()
  t.equal((await full.reserveKey({ key: 'k', jobId: third, fingerprint: 'h', expiresAt: clock.now() + 60_000 })).jobId, third)
  await full.create({ ...job(0), id: third, key: 'k' })
  await done(full, third, 0)
  t.equal((await full.reserveKey({ key: 'k', jobId: newJobId(), fingerprint: 'i', expiresAt: clock.now() + 60_000 })).jobId, third, 'a finished job\'s key lives with its result')
  await full.delete(third)
  const fourth = newJobId()
  t.equal((await full.reserveKey({ key: 'k', jobId: fourth, fingerprint: 'i', expiresAt: clock.now() + 60_000 })).jobId, fourth, 'and goes with it: keys never outnumber jobs')

  // Expired reservations leave the budget when swept.
  await clock.advance(61_000)
  t.equal(store.memory?.stats().storedBytes, base)
})

t.test('memory store: results past their time leave memory unread, on the store\'s clock', async t => {
  const clock = new FakeClock()
  const store = memoryStore({ clock, sweepIntervalMs: 1000 })
  stores.push(store)
  const first = job(1000)
  await store.create({ ...first, expiresAt: clock.now() + 5000 })
  await store.claim(first.id, { owner: 'w', leaseUntil: clock.now() + 1000, now: clock.now() })
  await store.complete(first.id, 'w', { statusCode: 200, headers: {}, body: Buffer.alloc(1000) }, clock.now() + 5000)
  t.match(store.memory?.stats(), { storedJobs: 1, expired: 0 })
  await clock.advance(6000)
  t.match(store.memory?.stats(), { storedJobs: 0, storedBytes: 0, expired: 1 }, 'swept without a read')
})

t.test('memory backends: the budget options are checked', async t => {
  for (const maxBytes of [0, 1023, 1.5, '1' as never, -1]) t.throws(() => memoryStore({ maxBytes }), { code: 'FST_LONG_RUNNING_INVALID_OPTION', message: /maxBytes/ })
  for (const maxQueued of [0, 1.5, 'x' as never]) t.throws(() => memoryQueue({ maxQueued }), { code: 'FST_LONG_RUNNING_INVALID_OPTION', message: /maxQueued/ })
})

t.test('memory queue maxQueued: a send beyond it is refused; redeliveries never are', async t => {
  const queue = memoryQueue({ maxQueued: 2, retryDelaySeconds: 0 })
  t.teardown(async () => await queue.close?.())
  await queue.send('a')
  await queue.send('b')
  await t.rejects(queue.send('c'), { code: 'FST_LONG_RUNNING_QUEUE_FULL' })
  t.equal(queue.queued?.(), 2)
  const seen: string[] = []
  const consumer = queue.consume(async delivery => {
    seen.push(delivery.body)
    // Each message is handed back once: the two come back while the queue is "full".
    return delivery.receiveCount === 1 ? { ack: false, delaySeconds: 0 } : { ack: true }
  }, { concurrency: 2, onError: () => {} })
  await pollUntil(async () => seen.length, count => count === 4)
  await consumer.stop()
  t.same(seen.sort(), ['a', 'a', 'b', 'b'])
  t.equal(queue.queued?.(), 0)
})

t.test('every adapter factory takes a clock, checked like the plugin\'s; memoryQueue\'s shared is a boolean', async t => {
  const bad = { now: Date.now } as never
  const message = 'Expected `clock` to be an object with now, setTimeout, clearTimeout, got an object'
  const factories: Array<[string, () => unknown]> = [
    ['memoryQueue', () => memoryQueue({ clock: bad })],
    ['memoryStore', () => memoryStore({ clock: bad })],
    ['sqsQueue', () => sqsQueue({ queueUrl: 'http://localhost:9324/000000000000/jobs', clock: bad })],
    ['dynamoDbStore', () => dynamoDbStore({ tableName: 'jobs', clock: bad })],
    ['s3Results', () => s3Results({ bucket: 'results', clock: bad })]
  ]
  for (const [name, make] of factories) t.throws(make, { code: 'FST_LONG_RUNNING_INVALID_OPTION', message }, name)
  t.throws(() => memoryQueue({ shared: 'yes' as never }), { code: 'FST_LONG_RUNNING_INVALID_OPTION', message: 'Expected `shared` to be a boolean, got "yes"' })
  t.equal(memoryQueue().inProcess, true, 'a queue of this process alone by default')
  t.equal(memoryQueue({ shared: true }).inProcess, false, 'shared: treated as SQS is')
})

t.test('memory queue: send delays and redeliveries run on its clock', async t => {
  const clock = new FakeClock()
  const queue = memoryQueue({ clock, retryDelaySeconds: 2 })
  t.teardown(async () => await queue.close?.())
  const seen: Array<[string, number]> = []
  const consumer = queue.consume(async delivery => {
    seen.push([delivery.body, delivery.receiveCount])
    if (delivery.receiveCount === 1) throw new Error('handed back after the back-off')
    return { ack: true }
  }, { concurrency: 1, onError: () => {} })
  t.teardown(async () => await consumer.stop())
  await queue.send('later', { delaySeconds: 5 })
  await clock.advance(4999)
  t.same(seen, [], 'still delayed a millisecond before its time')
  await clock.advance(1)
  t.same(seen, [['later', 1]])
  await clock.advance(1999)
  t.same(seen, [['later', 1]], 'the back-off of retryDelaySeconds not over yet')
  await clock.advance(1)
  t.same(seen, [['later', 1], ['later', 2]])
  t.equal(queue.queued?.(), 0)
})
