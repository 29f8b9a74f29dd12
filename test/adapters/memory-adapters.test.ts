import t from 'tap'
import { dynamoDbStore, memoryQueue, memoryStore, s3Results, sqsQueue, type JobRecord, type JobStore } from '../../src/index.js'
import { newJobId } from '../../src/core/job-id.js'
import { queueContract } from '../contracts/queue-contract.js'
import { storeContract } from '../contracts/store-contract.js'
import { FakeClock } from '../helpers/clock.js'
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
  const store = memoryStore({ maxBytes: 4 * MiB })
  stores.push(store)
  const jobs = [job(MiB), job(MiB), job(MiB)]
  for (const next of jobs) await store.create(next)
  await t.rejects(store.create(job(MiB)), { code: 'FST_LONG_RUNNING_STORE_FULL', statusCode: 503 }, 'requests are never evicted')
  const [a, b, c] = jobs.map(next => next.id) as [string, string, string]
  for (const id of [a, b, c]) await done(store, id, MiB)
  await t.rejects(store.create(job(MiB)), { code: 'FST_LONG_RUNNING_STORE_FULL' }, 'nor results nobody has read')
  store.delivered?.(b)
  store.delivered?.(a)
  store.delivered?.(b) // delivered again: now the most recent
  store.delivered?.('unknown')
  const d = job(MiB)
  await store.create(d)
  t.equal(await store.get(a), undefined, 'the oldest delivery made room')
  t.ok(await store.get(b) !== undefined && await store.get(c) !== undefined)
  t.match(store.memory?.stats(), { storedJobs: 3, evictions: 1, expired: 0 })
  t.ok((store.memory?.stats().storedBytes ?? Infinity) <= 4 * MiB)
  t.equal(store.memory?.heldBytes(), (store.memory?.stats().storedBytes ?? 0) - (MiB + 512), 'b is evictable, the rest is held')
  const held = store.memory?.heldBytes()
  store.delivered?.(d.id)
  t.equal(store.memory?.heldBytes(), held, 'a pending job is never evictable')

  // A result larger than what is left is stored all the same (the job ran), evicting b for it.
  await done(store, d.id, 2 * MiB)
  t.equal(await store.get(b), undefined)
  t.match(store.memory?.stats(), { storedJobs: 2, evictions: 2 })
  await store.delete(c)
  await store.delete(d.id)
  t.match(store.memory?.stats(), { storedJobs: 0, storedBytes: 0 })
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
