import { Redis } from 'ioredis'
import Fastify from 'fastify'
import t from 'tap'
import longRunning, { redisQueue, redisStore, type Consumer } from '../../src/index.js'
import { newJobId } from '../../src/core/job-id.js'
import { ANNOUNCED_FIELDS, announcedRecord } from '../../src/store/redis-records.js'
import { startRedisServer } from '../../example/redis-server.js'

// The Redis adapters' error paths and bad input, each made to happen on purpose: a server down at
// the first use, values past the limit, a claim sent again, a lock gone under the worker, change
// messages that do not tell a record.

const redis = await startRedisServer()
t.teardown(async () => { await redis.close() })

t.test('a server down at the first use: FST_LONG_RUNNING_BACKEND at once, and the next call connects once it is back', async t => {
  await redis.stop()
  const store = redisStore({ url: redis.url, prefix: 'down' })
  const queue = redisQueue({ url: redis.url, name: 'down' })
  const watching = redisStore({ url: redis.url, prefix: 'down' })
  t.teardown(async () => { await store.close?.(); await queue.close?.(); await watching.close?.() })
  await t.rejects(store.get(newJobId()), { code: 'FST_LONG_RUNNING_BACKEND', statusCode: 503 })
  await t.rejects(queue.send('{}'), { code: 'FST_LONG_RUNNING_BACKEND', statusCode: 503 })
  // A watch's connection waits for the server; closing the store meanwhile drops it.
  watching.watch?.(newJobId(), () => {})
  await watching.close?.()
  await redis.restart()
  t.equal(await store.get(newJobId()), undefined, 'the store connects on its next call')
  await queue.send('{}')
  t.pass('and so does the queue')
})

t.test('a request or a response past maxValueBytes is refused with 413, nothing written', async t => {
  const maxValueBytes = 7 * 1024 * 1024
  const store = redisStore({ url: redis.url, prefix: 'big', maxValueBytes })
  t.teardown(async () => { await store.close?.() })
  const id = newJobId()
  const big = Buffer.alloc(maxValueBytes + 1)
  const expiresAt = Date.now() + 60_000
  await t.rejects(store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt, request: { method: 'POST', url: '/', headers: {}, body: big } }), { code: 'FST_LONG_RUNNING_VALUE_TOO_LARGE', statusCode: 413 })
  t.equal(await store.get(id), undefined, 'no job')
  await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt })
  t.ok((await store.claim(id, { owner: 'w', leaseUntil: Date.now() + 30_000, now: Date.now() })).claimed)
  await t.rejects(store.complete(id, 'w', { statusCode: 200, headers: {}, body: big }, expiresAt), { code: 'FST_LONG_RUNNING_VALUE_TOO_LARGE' })
  t.match(await store.get(id), { status: 'running', owner: 'w' }, 'still running, its owner may store a smaller answer')
})

t.test('a request past maxValueBytes gets the 413 the docs name, with an Idempotency-Key or without, and leaves no job', async t => {
  const maxValueBytes = 7 * 1024 * 1024
  const app = Fastify({ bodyLimit: 16 * 1024 * 1024 })
  t.teardown(async () => { await app.close() })
  await app.register(longRunning, { queue: redisQueue({ url: redis.url, name: 'too-large' }), store: redisStore({ url: redis.url, prefix: 'too-large', maxValueBytes }), consume: false, waitSeconds: 1 })
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_request, body, done) => { done(null, body) })
  app.post('/upload', { longRunning: true }, async request => ({ bytes: (request.body as Buffer).length }))
  const control = new Redis(redis.url)
  t.teardown(() => { control.disconnect() })
  for (const headers of [{}, { 'idempotency-key': '"large"' }]) {
    const answer = await app.inject({ method: 'POST', url: '/upload', payload: Buffer.alloc(maxValueBytes + 1), headers: { 'content-type': 'application/octet-stream', ...headers } })
    t.equal(answer.statusCode, 413, JSON.stringify(headers))
    t.equal(answer.json().code, 'FST_LONG_RUNNING_VALUE_TOO_LARGE')
    t.equal(answer.headers['retry-after'], undefined, 'not worth a retry')
  }
  t.same(await control.keys('{too-large:*}:job'), [], 'no job written')
  t.same(await control.keys('{too-large:key:*}'), [], 'no key kept for a job that never was')
  t.equal(Number(await control.llen('bull:too-large:wait')), 0, 'no message sent')
  const smaller = await app.inject({ method: 'POST', url: '/upload', payload: Buffer.alloc(1024), headers: { 'content-type': 'application/octet-stream', 'idempotency-key': '"large"', prefer: 'respond-async' } })
  t.equal(smaller.statusCode, 202, 'the same key with a body that fits: a new request, not a 422')
})

t.test('two apps that share a queue (store prefixes apart, queue names not): the worker that drops the other\'s job says why', async t => {
  let heard = (_line: string): void => {}
  const warned = new Promise<string>(resolve => { heard = line => { if (line.includes('another app share this queue')) resolve(line) } })
  const apps = await Promise.all(['one', 'two'].map(async (prefix, i) => {
    const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { heard(line) } } } })
    t.teardown(async () => { await app.close() })
    await app.register(longRunning, { queue: redisQueue({ url: redis.url, name: 'shared' }), store: redisStore({ url: redis.url, prefix }), consume: i === 1, waitSeconds: 1 })
    app.post('/job', { longRunning: true }, async () => ({ prefix }))
    await app.ready()
    return app
  }))
  const accepted = await (apps[0] as typeof apps[number]).inject({ method: 'POST', url: '/job', headers: { prefer: 'respond-async' } })
  t.equal(accepted.statusCode, 202)
  t.match(JSON.parse(await warned), { level: 40, msg: /unknown to this store.*redisQueue name or prefix/ })
})

t.test('a claim sent again after its answer was lost finds its own lease: the same attempt, not another', async t => {
  const store = redisStore({ url: redis.url, prefix: 'again' })
  t.teardown(async () => { await store.close?.() })
  const id = newJobId()
  await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: Date.now() + 60_000 })
  const claim = { owner: 'w', leaseUntil: Date.now() + 30_000, now: Date.now() }
  t.same(await store.claim(id, claim), { claimed: true, attempt: 1 })
  t.same(await store.claim(id, claim), { claimed: true, attempt: 1 }, 'the resent claim')
  t.match(await store.claim(id, { ...claim, owner: 'other' }), { claimed: false, record: { attempt: 1, owner: 'w' } })
})

t.test('a lock gone under the worker: handing the message back fails, and the consumer tells it', async t => {
  const queue = redisQueue({ url: redis.url, name: 'lost-lock', retryDelaySeconds: 0 })
  const control = new Redis(redis.url)
  let consumer: Consumer | undefined
  t.teardown(async () => { await consumer?.stop(); await queue.close?.(); control.disconnect() })
  const told = new Promise<unknown>(resolve => {
    let first = true
    consumer = queue.consume(async () => {
      // BullMQ's first job is `1`: its lock goes, as if it had lapsed and been taken.
      if (first) await control.del('bull:lost-lock:1:lock')
      first = false
      return { ack: false, delaySeconds: 0 }
    }, { concurrency: 1, onError: resolve })
  })
  await queue.send('{}')
  t.match(await told, { code: 'FST_LONG_RUNNING_BACKEND', detail: /^Redis moveToDelayed: / })
})

t.test('a change message that does not tell a record is read: a bare id, bad JSON, another shape, a finished job', async t => {
  const now = Date.now()
  const id = newJobId()
  const fields = (status: string): Array<string | false> => ANNOUNCED_FIELDS.map(field => field === 'st' ? status : field === 'exp' ? String(now + 60_000) : false)
  // The id at once; the record only when asked (for a job watched in this process).
  const told = (message: string): { id: string, record: unknown } => {
    const announced = announcedRecord(message, now)
    return { id: announced.id, record: announced.record() }
  }
  t.same(told(id), { id, record: 'read' })
  t.same(told(`${id} {not json`), { id, record: 'read' })
  t.same(told(`${id} {"st":"pending"}`), { id, record: 'read' })
  t.same(told(`${id} ${JSON.stringify(fields('pending').slice(1))}`), { id, record: 'read' }, 'a field missing')
  t.same(told(`${id} ${JSON.stringify(fields('pending').map(field => field === false ? 0 : field))}`), { id, record: 'read' }, 'not strings')
  t.same(told(`${id} ${JSON.stringify(fields('done'))}`), { id, record: 'read' }, 'a finished job: its response is not in the message')
  t.match(told(`${id} ${JSON.stringify(fields('pending'))}`), { id, record: { id, status: 'pending' } }, 'a record it tells')
})
