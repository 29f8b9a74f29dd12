import t from 'tap'
import { redisQueue, redisStore, type JobQueue, type JobStore } from '../../src/index.js'
import { queueContract, storeContract } from '../../src/testing/index.js'
import { startRedisServer } from '../../example/redis-server.js'

// The same contract suites as the in-memory and AWS adapters, against a redis-server of the
// test's own on a free port.
const server = await startRedisServer()
t.teardown(async () => { await server.close() })
const stores: JobStore[] = []
const queues: JobQueue[] = []
t.teardown(async () => { for (const queue of queues) await queue.close?.() })
t.teardown(async () => { for (const store of stores) await store.close?.() })

t.test('Redis store', async t => {
  const full = redisStore({ url: server.url, prefix: 'offers' })
  stores.push(full)
  t.type(full.getMany, 'function', 'it offers getMany (the shared poller\'s batched read)')
  let n = 0
  storeContract(t, async clock => {
    const store = redisStore({ url: server.url, prefix: `contract${n++}`, clock })
    stores.push(store)
    return store
  })
})

t.test('Redis queue', async t => {
  let n = 0
  queueContract(t, async () => {
    // A queue per test, so that no test sees another's messages.
    const queue = redisQueue({ url: server.url, name: `contract-${n++}`, maxMessageBytes: 64 * 1024, retryDelaySeconds: 0 })
    queues.push(queue)
    return queue
  })
})
