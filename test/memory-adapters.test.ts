import t from 'tap'
import { memoryQueue, memoryStore, type JobRecord, type ResultStore } from '../src/index.js'
import { newJobId } from '../src/job/id.js'
import { queueContract } from './contracts/queue-contract.js'
import { storeContract } from './contracts/store-contract.js'

const stores: ResultStore[] = []
t.teardown(async () => { for (const store of stores) await store.close?.() })

t.test('memory store', async t => {
  storeContract(t, async () => {
    const store = memoryStore()
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
  const store = memoryStore({ sweepIntervalMs: 5 })
  stores.push(store)
  const id = newJobId()
  await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: Date.now() + 20 })
  const key = { key: 'k', jobId: id, fingerprint: 'f', expiresAt: Date.now() + 20 }
  await store.reserveKey(key)
  // The sweep timer is unref'd (a store never keeps a process alive): hold the loop open meanwhile.
  const keepAlive = setInterval(() => {}, 1000)
  const gone = await new Promise(resolve => store.watch?.(id, resolve))
  clearInterval(keepAlive)
  t.equal(gone, undefined)
  t.equal(await store.get(id), undefined)
  const next = { ...key, jobId: newJobId(), expiresAt: Date.now() + 60_000 }
  t.same(await store.reserveKey(next), next, 'its key swept with it')
})
