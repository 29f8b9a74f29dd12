import { connect } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import longRunning, { memoryStore } from '../../src/index.js'
import { newJobId } from '../../src/core/job-id.js'
import { encodeMessage, messageDigest } from '../../src/job/message.js'
import { delivery, RecordingQueue } from '../helpers/recording-queue.js'

// The trust boundary on the HTTP side and in the worker (issue 26): a request no worker could
// replay is refused when it arrives (point 2), `carry` sets only the app's own members (point
// 3), and a job run reaches long-running routes only, whatever its message says (point 1).

async function listen (t: Test, app: FastifyInstance): Promise<number> {
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as { port: number }).port
}

/** One raw HTTP/1.x request; resolves with the status line and body of its answer. */
async function raw (port: number, request: string): Promise<{ status: number, body: string }> {
  const socket = connect(port, '127.0.0.1')
  socket.end(request)
  let text = ''
  for await (const chunk of socket) text += String(chunk)
  const [head = '', body = ''] = text.split('\r\n\r\n')
  return { status: Number(/^HTTP\/1\.\d (\d+)/.exec(head)?.[1]), body }
}

t.test('requests a worker could never replay get a 400 that says why; nothing is queued', async t => {
  const queue = new RecordingQueue()
  const app = Fastify({ trustProxy: true })
  await app.register(longRunning, { queue, consume: false })
  app.get('/report', { longRunning: true }, async () => 'never')
  const port = await listen(t, app)
  const cases: Array<[string, string, RegExp]> = [
    ['a Host over 1,024 characters', `GET /report HTTP/1.1\r\nHost: ${'h'.repeat(1025)}\r\n\r\n`, /host/],
    ['a Host with /', 'GET /report HTTP/1.1\r\nHost: a/b\r\n\r\n', /host/],
    ['a Host with @', 'GET /report HTTP/1.1\r\nHost: user@a\r\n\r\n', /host/],
    ['HTTP/1.0 without Host', 'GET /report HTTP/1.0\r\n\r\n', /host/],
    ['an absolute-form target', 'GET http://a.example/report HTTP/1.1\r\nHost: a.example\r\n\r\n', /origin-form/],
    ['an X-Forwarded-For address over 64 characters', `GET /report HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: ${'1'.repeat(65)}\r\n\r\n`, /client address/]
  ]
  for (const [name, request, reason] of cases) {
    const answer = await raw(port, request)
    t.equal(answer.status, 400, name)
    t.match(JSON.parse(answer.body), { code: 'FST_LONG_RUNNING_INVALID_REQUEST', message: reason }, name)
  }
  t.equal(queue.sent.length, 0, 'nothing was queued')
  t.equal((await raw(port, 'GET /report HTTP/1.1\r\nHost: a.example:8080\r\nX-Forwarded-For: 2001:db8::1\r\nPrefer: respond-async\r\n\r\n')).status, 202, 'a good one still goes')
})

t.test('carry may set the app\'s own members only: __proto__, constructor and the request\'s own are refused, clearly', async t => {
  const app = Fastify()
  app.decorateRequest('account', null as never)
  let carried: unknown = {}
  await app.register(longRunning, { waitSeconds: 5, carry: () => carried as Record<string, never> })
  app.get('/who', { longRunning: true }, async request => ({ account: (request as unknown as { account: unknown }).account, proto: Object.getPrototypeOf(request) === Object.prototype }))
  const port = await listen(t, app)
  const get = async (): Promise<{ status: number, body: { message?: string } }> => {
    const response = await fetch(`http://127.0.0.1:${port}/who`)
    return { status: response.status, body: await response.json() as { message?: string } }
  }
  carried = { account: { id: 7 } }
  t.same(await get(), { status: 200, body: { account: { id: 7 }, proto: false } })
  for (const key of ['__proto__', 'constructor', 'prototype', 'id', 'headers', 'ip', 'log', 'raw', 'longRunning']) {
    carried = JSON.parse(`{"${key}": {"admin": true}}`)
    t.match(await get(), { status: 500, body: { code: 'FST_LONG_RUNNING_INVALID_CARRY', message: new RegExp(`\`${key}\``) } }, key)
  }
})

t.test('in the worker: a job run reaches long-running routes only, and a message that is its job\'s but unreadable ends the job', async t => {
  const queue = new RecordingQueue()
  const store = memoryStore()
  const app = Fastify()
  let plain = 0
  await app.register(longRunning, { queue, store, consume: false, waitSeconds: 5 })
  app.get('/report', { longRunning: true }, async () => 'report')
  app.get('/plain', async () => { plain++; return 'plain' })
  await app.ready()
  t.teardown(() => app.close())

  // A job whose accepted message names an ordinary route (as if the app's routes changed since).
  const id = newJobId()
  const message = { id, timeoutSeconds: 60, maxAttempts: 1, resultTtlSeconds: 60, request: { method: 'GET', url: '/plain', headers: {} } }
  await store.create({ id, waitSeconds: 5, createdAt: Date.now(), expiresAt: Date.now() + 60_000, messageDigest: messageDigest(JSON.parse(encodeMessage(message))) })
  t.same(await app.longRunning.handle(delivery(encodeMessage(message))), { ack: true })
  t.equal(plain, 0, 'the ordinary route never ran')
  const reached = await app.inject({ url: `/async-response/${id}` })
  t.equal(reached.statusCode, 500)
  t.match(reached.json(), { code: 'FST_LONG_RUNNING_INVALID_MESSAGE', message: /GET \/plain reaches no long-running route/ })

  // The job's own message, but with a field this worker cannot read (a sender of another version).
  const accepted = await app.inject({ url: '/report', headers: { prefer: 'respond-async' } })
  const genuine = JSON.parse(queue.sent[0] as string)
  t.same(await app.longRunning.handle(delivery(JSON.stringify({ ...genuine, backup: 'yes' }))), { ack: true })
  const ended = await app.inject({ url: accepted.headers.location as string, headers: { prefer: 'wait=5' } })
  t.equal(ended.statusCode, 500, 'the client hears of it at once')
  t.match(ended.json(), { code: 'FST_LONG_RUNNING_INVALID_MESSAGE', message: /bad backup/ })
  // Unreadable and not its job's: dropped, nothing changes.
  for (const body of ['{', '[]', JSON.stringify({ id: 'nope' }), JSON.stringify({ ...genuine, backup: 'yes', timeoutSeconds: 5 })]) {
    t.same(await app.longRunning.handle(delivery(body)), { ack: true })
  }
})

t.test('the caller binding is keyed: the store never holds a digest a dictionary of user ids reverses', async t => {
  const { createHash, createHmac } = await import('node:crypto')
  const stored = async (options: Parameters<typeof longRunning>[1]): Promise<string | undefined> => {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(longRunning, { waitSeconds: 5, bindTo: () => 'ada@example.com', ...options })
    app.get('/mine', { longRunning: true }, async () => 'mine')
    const accepted = await app.inject({ url: '/mine', headers: { prefer: 'respond-async' } })
    return (await app.longRunning.store.get(accepted.json().id))?.binding
  }
  const plain = createHash('sha256').update('ada@example.com').digest('base64url')
  const secret = 'a shared secret of at least 32 bytes!'
  t.equal(await stored({ bindingSecret: secret }), createHmac('sha256', secret).update('ada@example.com').digest('base64url'), 'bindingSecret: HMAC-SHA256')
  t.not(await stored({}), plain, 'the embedded default: a random key of its own')
  t.equal(await stored({ store: memoryStore() }), plain, 'a store of yours without bindingSecret: a plain SHA-256, as the docs say')
  for (const bad of ['short', Buffer.alloc(31), 42]) {
    await t.rejects(async () => await Fastify().register(longRunning, { bindingSecret: bad as never }), { code: 'FST_LONG_RUNNING_INVALID_OPTION', message: /bindingSecret/ })
  }
})

t.test('bindTo in JavaScript: a number binds as its decimal string, null binds nothing, anything else is the app\'s mistake, named', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  const users: Record<string, unknown> = { 1: 42, 2: '42', 3: null, 4: { id: 42 }, 5: Number.NaN }
  await app.register(longRunning, { waitSeconds: 5, bindTo: request => users[String(request.headers['x-user'])] as never })
  app.get('/mine', { longRunning: true }, async () => 'mine')
  const create = async (user: string): Promise<{ statusCode: number, body: string, id?: string }> => {
    const answer = await app.inject({ url: '/mine', headers: { prefer: 'respond-async', 'x-user': user } })
    return { statusCode: answer.statusCode, body: answer.body, id: answer.statusCode === 202 ? answer.json().id : undefined }
  }
  const read = async (id: string | undefined, user: string): Promise<number> =>
    (await app.inject({ url: `/async-response/${String(id)}`, headers: { 'x-user': user } })).statusCode
  const numbered = await create('1')
  t.equal(await read(numbered.id, '2'), 200, 'the number 42 and the string "42" are the same caller')
  t.equal(await read(numbered.id, '3'), 404, 'nobody else')
  const anonymous = await create('3')
  t.equal(await read(anonymous.id, '1'), 200, 'null binds nothing, as undefined does')
  for (const user of ['4', '5']) {
    const refused = await create(user)
    t.equal(refused.statusCode, 500)
    t.match(JSON.parse(refused.body), { code: 'FST_LONG_RUNNING_INVALID_OPTION', message: /^Expected `bindTo` to be a function returning a string, a finite number, undefined or null, got (an object|NaN)$/ })
  }
})

t.test('a shared queue with the default store: a warning at registration, since no other process can see its jobs', async t => {
  const { Writable } = await import('node:stream')
  const { sqsQueue, dynamoDbStore } = await import('../../src/index.js')
  const warningsOf = async (options: Parameters<typeof longRunning>[1]): Promise<string[]> => {
    const warnings: string[] = []
    const stream = new Writable({ write (chunk: Buffer, _encoding, done) { const line = JSON.parse(String(chunk)); if (line.level === 40) warnings.push(line.msg); done() } })
    const app = Fastify({ logger: { level: 'warn', stream } })
    await app.register(longRunning, options)
    await app.close()
    return warnings
  }
  const queue = (): ReturnType<typeof sqsQueue> => sqsQueue({ queueUrl: 'http://127.0.0.1:1/000000000000/jobs' })
  t.match(await warningsOf({ queue: queue() }), [/the queue is shared with other processes but the store is the default in-memory one/])
  t.same(await warningsOf({ queue: queue(), store: dynamoDbStore({ tableName: 'jobs' }) }), [], 'a store of its own: no warning')
  t.same(await warningsOf({}), [], 'the embedded default: no warning')
})

t.test('keys without bindTo belong to the route: a warning at startup names the routes; with bindTo each caller has their own', async t => {
  const { Writable } = await import('node:stream')
  const serve = async (bindTo: boolean): Promise<{ url: string, warnings: string[] }> => {
    const warnings: string[] = []
    const stream = new Writable({ write (chunk: Buffer, _encoding, done) { const line = JSON.parse(String(chunk)); if (line.level === 40) warnings.push(line.msg); done() } })
    const app = Fastify({ logger: { level: 'warn', stream } })
    await app.register(longRunning, { waitSeconds: 5, ...(bindTo ? { bindTo: request => String(request.headers['x-user']) } : {}) })
    app.post('/orders', { longRunning: true }, async request => ({ for: request.headers['x-user'] }))
    app.get('/report', { longRunning: true }, async () => 'no keys on GET')
    const port = await listen(t, app)
    return { url: `http://127.0.0.1:${port}`, warnings }
  }
  const order = async (url: string, user: string): Promise<unknown> =>
    await (await fetch(`${url}/orders`, { method: 'POST', headers: { 'x-user': user, 'idempotency-key': '"order-42"' } })).json()
  const shared = await serve(false)
  t.match(shared.warnings, [/Idempotency-Key is on for these routes and no bindTo/])
  t.same(await order(shared.url, 'alice'), { for: 'alice' })
  t.same(await order(shared.url, 'mallory'), { for: 'alice' }, 'without bindTo: the first caller\'s stored answer, as the warning says')
  const bound = await serve(true)
  t.same(bound.warnings, [])
  t.same(await order(bound.url, 'alice'), { for: 'alice' })
  t.same(await order(bound.url, 'mallory'), { for: 'mallory' }, 'with bindTo: a key of her own')
})
