import { once } from 'node:events'
import t, { type Test } from 'tap'
import { redisQueue, redisStore, type JobRecord, type JobStore } from '../../src/index.js'
import { newJobId } from '../../src/core/job-id.js'
import { EVICTION_WARNING } from '../../src/redis-client.js'
import { startRedisServer, type RedisServer } from '../../example/redis-server.js'
import { buildTestApp } from '../helpers/app.js'
import { countRedisReads } from '../helpers/redis-reads.js'

// What the contract suites cannot see: the change feed across processes, a server that goes
// away and comes back, and its configuration. What importing the package loads: lazy-load.test.ts.

async function server (t: Test, args: string[] = []): Promise<RedisServer> {
  const started = await startRedisServer(args)
  t.teardown(async () => { await started.close() })
  return started
}

function store (t: Test, url: string): JobStore {
  const made = redisStore({ url })
  t.teardown(async () => { await made.close?.() })
  return made
}

/** Resolves with the first record `listener` hears that `accept` takes. */
async function heard (watching: JobStore, id: string, accept: (record: JobRecord | undefined) => boolean): Promise<JobRecord | undefined> {
  return await new Promise(resolve => {
    const stop = watching.watch?.(id, record => {
      if (!accept(record)) return
      stop?.()
      resolve(record)
    })
  })
}

const response = { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: Buffer.from('done') }

t.test('a watcher on another connection (another process) is woken by the write itself, no polling', async t => {
  const redis = await server(t)
  const writer = store(t, redis.url)
  const reader = store(t, redis.url)
  const id = newJobId()
  await writer.create({ id, waitSeconds: 5, createdAt: Date.now(), expiresAt: Date.now() + 60_000 })
  const running = heard(reader, id, record => record?.status === 'running')
  const done = heard(reader, id, record => record?.status === 'done')
  t.ok((await writer.claim(id, { owner: 'w', leaseUntil: Date.now() + 30_000, now: Date.now() })).claimed)
  t.match(await running, { status: 'running', owner: 'w' })
  t.ok(await writer.complete(id, 'w', response, Date.now() + 60_000))
  t.equal((await done)?.response?.body.toString(), 'done')
  const gone = heard(reader, id, record => record === undefined)
  await writer.delete(id)
  t.equal(await gone, undefined, 'told when the job is gone')
})

t.test('a waiting process follows its job from the change messages: no read between the race check and the result (issue 27)', async t => {
  const redis = await server(t)
  const writer = store(t, redis.url)
  const reader = store(t, redis.url)
  // Every read of a record from this process is an HMGET through ioredis; the writer's are all scripts.
  const counted = await countRedisReads(t)
  const id = newJobId()
  await writer.create({ id, waitSeconds: 5, createdAt: Date.now(), expiresAt: Date.now() + 60_000 })
  const seen: string[] = []
  let live = (): void => {}
  const subscribed = new Promise<void>(resolve => { live = resolve })
  const done = new Promise<JobRecord | undefined>(resolve => {
    reader.watch?.(id, record => {
      seen.push(`${String(record?.status)} ${record?.progress?.fraction ?? '-'}`)
      if (seen.length === 1) live()
      if (record?.status === 'done') resolve(record)
    })
  })
  t.equal((await reader.get(id))?.status, 'pending', 'the race check: one read')
  await subscribed // the subscription is live: it read every watched job once
  const before = counted.reads
  t.ok((await writer.claim(id, { owner: 'w', leaseUntil: Date.now() + 30_000, now: Date.now() })).claimed)
  for (const fraction of [0.25, 0.5, 0.75]) t.ok(await writer.setProgress(id, 'w', { fraction, message: `${fraction * 100} % é ✓ "quoted"` }))
  t.ok(await writer.renew(id, 'w', Date.now() + 40_000), 'a renewal tells nobody')
  t.ok(await writer.complete(id, 'w', response, Date.now() + 60_000))
  t.equal((await done)?.response?.body.toString(), 'done')
  t.same(seen.slice(1), ['running -', 'running 0.25', 'running 0.5', 'running 0.75', 'done 0.75'], 'every change heard, in order (a finished job keeps its last progress)')
  t.equal(counted.reads - before, 1, 'one read while waiting: the finished job\'s response')
})

t.test('a watch across a restart of the server: resubscribed, and the job read again', async t => {
  const redis = await server(t, ['--appendonly', 'yes', '--appendfsync', 'always'])
  const writer = store(t, redis.url)
  const reader = store(t, redis.url)
  const id = newJobId()
  await writer.create({ id, waitSeconds: 5, createdAt: Date.now(), expiresAt: Date.now() + 60_000 })
  t.ok((await writer.claim(id, { owner: 'w', leaseUntil: Date.now() + 30_000, now: Date.now() })).claimed)
  const done = heard(reader, id, record => record?.status === 'done')
  await reader.get(id) // the subscription is live once a watch has read
  await redis.stop()
  await t.rejects(writer.get(id), { code: 'FST_LONG_RUNNING_BACKEND', statusCode: 503 }, 'down: a backend error, at once')
  await redis.restart()
  // Another process, started now (the writer's own connection reconnects on its back-off).
  t.ok(await store(t, redis.url).complete(id, 'w', response, Date.now() + 60_000), 'the job survived the restart (append-only file) and completes')
  t.equal((await done)?.status, 'done', 'the waiter hears it')
})

t.test('a server that may evict keys is named at once: a warning with its own code', async t => {
  const redis = await server(t, ['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru'])
  const warned = once(process, 'warning') as Promise<[Error & { code?: string }]>
  await store(t, redis.url).get(newJobId())
  const [warning] = await warned
  t.equal(warning.code, EVICTION_WARNING)
  t.match(warning.message, /maxmemory-policy is allkeys-lru.*noeviction/)
})

t.test('Redis down at acceptance: 503 with Retry-After within the acceptance retries; then jobs run again', async t => {
  const redis = await server(t)
  const { app } = await buildTestApp({ queue: redisQueue({ url: redis.url }), store: redisStore({ url: redis.url }), consume: true, waitSeconds: 5 })
  t.teardown(async () => { await app.close() })
  const post = async (): Promise<Awaited<ReturnType<typeof app.inject>>> =>
    await app.inject({ method: 'POST', url: '/job/a?open=1', payload: 'hello', headers: { 'content-type': 'text/plain' } })
  t.equal((await post()).statusCode, 201, 'up: the job runs')
  await redis.stop()
  const refused = await post()
  t.equal(refused.statusCode, 503)
  t.equal(refused.headers['retry-after'], '1')
  t.match(refused.json(), { code: 'FST_LONG_RUNNING_ENQUEUE_FAILED' })
  await redis.restart()
  let answer = await post()
  for (let tries = 0; answer.statusCode === 503 && tries < 50; tries++) answer = await post()
  t.equal(answer.statusCode, 201, 'back: jobs run again')
  t.equal(answer.body, 'hello')
})
