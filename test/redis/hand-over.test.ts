import { EventEmitter } from 'node:events'
import type { Redis } from 'ioredis'
import t from 'tap'
import { redisStore, type JobRecord, type JobStore } from '../../src/index.js'
import { newJobId } from '../../src/core/job-id.js'
import { RedisWatch } from '../../src/store/redis-watch.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { startRedisServer } from '../../example/redis-server.js'
import { countRedisReads } from '../helpers/redis-reads.js'

// A job ended by the process where its requests wait is handed to them with the end's reply
// (issue 27: no read of the response, and one round trip less before the answer), and what
// that adds to the change feed: news by two ways, and done as final.

const response = { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: Buffer.from('done') }

t.test('a request waiting where its job ends hears it with no read: the race check is the only one', async t => {
  const redis = await startRedisServer()
  t.teardown(async () => { await redis.close() })
  const store = redisStore({ url: redis.url })
  t.teardown(async () => { await store.close?.() })
  const counted = await countRedisReads(t)

  await live(store)
  for (const end of ['complete', 'cancel'] as const) {
    const id = newJobId()
    await store.create({ id, waitSeconds: 5, createdAt: Date.now(), expiresAt: Date.now() + 60_000, claim: { owner: 'w', leaseUntil: Date.now() + 30_000 } })
    const heard = nextDone(store, id)
    t.equal((await store.get(id))?.status, 'running', 'the race check')
    const before = counted.reads
    const ended = end === 'complete' ? store.complete(id, 'w', response, Date.now() + 60_000) : store.cancel(id, response, Date.now() + 60_000)
    t.ok(await ended, end === 'complete' ? 'completed' : 'cancelled')
    t.equal((await heard)?.response?.body.toString(), 'done', `the ${end} is heard with its response`)
    // Its change message comes too (on the subscriber connection): it finds nobody to read for.
    await new Promise(resolve => setTimeout(resolve, 100))
    t.equal(counted.reads - before, 0, `no read after the race check (${end})`)
  }
})

/** The first done record (or undefined) `store` tells of job `id`. */
async function nextDone (store: JobStore, id: string): Promise<JobRecord | undefined> {
  return await new Promise(resolve => {
    const stop = store.watch?.(id, record => {
      if (record !== undefined && record.status !== 'done') return
      stop?.()
      resolve(record)
    })
  })
}

/** Resolves once `store`'s change feed is live (its first watch has read its job once). */
async function live (store: JobStore): Promise<void> {
  const id = newJobId()
  await new Promise<void>(resolve => { const stop = store.watch?.(id, () => { stop?.(); resolve() }) })
}

/** A RedisWatch on a fake subscriber whose messages the test sends, and whose reads it counts. */
async function fakeFeed (records: Map<string, JobRecord>): Promise<{ watch: RedisWatch, send: (message: string) => void, reads: string[], decoded: string[] }> {
  const subscriber = Object.assign(new EventEmitter(), { subscribe: async () => 1 })
  const reads: string[] = []
  const decoded: string[] = []
  // A clock never advanced: no heartbeat for a subscriber that is not a connection.
  const watch = new RedisWatch('events', new FakeClock(), async () => subscriber as unknown as Redis, async id => {
    reads.push(id)
    return records.get(id)
  }, message => {
    const [id = '', status] = message.split(' ')
    return {
      id,
      record: () => {
        decoded.push(id)
        return status === undefined || status === 'done' ? 'read' : { ...record(id, 'running'), ...(records.get(id) ?? {}), status: 'running' }
      }
    }
  })
  return { watch, send: message => { subscriber.emit('message', 'events', message) }, reads, decoded }
}

function record (id: string, status: JobRecord['status']): JobRecord {
  return { id, status, attempt: 1, waitSeconds: 5, createdAt: 1, expiresAt: Date.now() + 60_000, ...(status === 'done' ? { response } : {}) }
}

const tick = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

t.test('the change message of a job being ended here waits for the end\'s own record', async t => {
  const records = new Map([['a', record('a', 'running')], ['b', record('b', 'running')]])
  const { watch, send, reads } = await fakeFeed(records)
  const heard: string[] = []
  watch.watch('a', found => heard.push(`a ${String(found?.status)}`))
  watch.watch('b', found => heard.push(`b ${String(found?.status)}`))
  await tick()
  reads.length = 0
  heard.length = 0
  // The message comes before the reply: no read, the reply's record is told.
  watch.ending('a')
  send('a done')
  await tick()
  t.same(reads, [], 'no read while the end is under way')
  watch.ended('a', record('a', 'done'))
  t.same(heard, ['a done'])
  // An end that did not end the job (refused, or its reply lost): the read that waited is made.
  watch.ending('b')
  send('b done')
  await tick()
  records.set('b', record('b', 'done'))
  watch.ended('b', undefined)
  await tick()
  t.same(reads, ['b'], 'read once the end is over')
  t.same(heard, ['a done', 'b done'])
})

t.test('done is final: older news heard after it is not told', async t => {
  const { watch, send } = await fakeFeed(new Map([['a', record('a', 'running')]]))
  const heard: string[] = []
  watch.watch('a', found => heard.push(String(found?.status)))
  await tick()
  heard.length = 0
  watch.ending('a')
  watch.ended('a', record('a', 'done'))
  send('a running')
  await tick()
  t.same(heard, ['done'], 'the progress message published before the end is dropped')
})

t.test('only the messages of jobs watched here are decoded', async t => {
  const { watch, send, decoded } = await fakeFeed(new Map())
  watch.watch('a', () => {})
  await tick()
  send('b running')
  send('a running')
  t.same(decoded, ['a'])
})
