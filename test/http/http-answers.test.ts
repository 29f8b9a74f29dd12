import { Writable } from 'node:stream'
import Fastify from 'fastify'
import t from 'tap'
import longRunning, { memoryStore, type JobRecord } from '../../src/index.js'
import { RUN_HEADER } from '../../src/job/context.js'
import { buildTestApp, closeTestApp } from '../helpers/app.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { RecordingQueue } from '../helpers/recording-queue.js'
import { recordingStore, spyStore } from '../helpers/spy-store.js'

// What the HTTP side answers before, or instead of, a job: Fastify's own checks, the plugin's
// 404/400/503, and the route's own errors, each exactly as a synchronous route would answer.

t.test('validation and authentication answer before anything is queued', async t => {
  const queue = new RecordingQueue()
  const test = await buildTestApp({ queue }, (app) => {
    app.register(async (secured) => {
      secured.addHook('onRequest', async (request, reply) => {
        if (request.headers.authorization !== 'Bearer ok') await reply.code(401).send({ error: 'no' })
      })
      secured.post('/secure', {
        longRunning: true,
        schema: { body: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } } }
      }, async () => 'ran')
    })
  })
  t.teardown(() => closeTestApp(test))
  const { app } = test
  t.equal((await app.inject({ method: 'POST', url: '/secure', payload: { n: 1 } })).statusCode, 401)
  const invalid = await app.inject({ method: 'POST', url: '/secure', payload: { n: 'x' }, headers: { authorization: 'Bearer ok' } })
  t.equal(invalid.statusCode, 400)
  t.equal(invalid.json().code, 'FST_ERR_VALIDATION')
  t.equal(queue.sent.length, 0, 'nothing queued')
  const accepted = await app.inject({ method: 'POST', url: '/secure', payload: { n: 1 }, headers: { authorization: 'Bearer ok', prefer: 'respond-async' } })
  t.equal(accepted.statusCode, 202)
  t.equal(queue.sent.length, 1)
})

t.test('a handler that throws gives the same error response as synchronously, custom handler included', async t => {
  const test = await buildTestApp({ waitSeconds: 5 })
  t.teardown(() => closeTestApp(test))
  test.gates.open('e')
  const response = await test.app.inject('/boom/e')
  t.equal(response.statusCode, 418)
  t.same(response.json(), { statusCode: 418, error: "I'm a Teapot", message: 'teapot trouble' })

  const custom = await buildTestApp({ waitSeconds: 5 }, (app) => {
    app.setErrorHandler(async (error, _request, reply) => await reply.code(599).header('x-custom', 'yes').send(`custom: ${(error as Error).message}`))
  })
  t.teardown(() => closeTestApp(custom))
  custom.gates.open('c')
  const handled = await custom.app.inject('/boom/c')
  t.equal(handled.statusCode, 599)
  t.equal(handled.headers['x-custom'], 'yes')
  t.equal(handled.body, 'custom: teapot trouble')
})

t.test('unknown, expired, malformed and foreign ids all get the same 404; malformed never reach the store', async t => {
  const store = memoryStore()
  let reads = 0
  const counting = spyStore(store, {
    get: async (id: string): Promise<JobRecord | undefined> => { reads += 1; return await store.get(id) }
  })
  const test = await buildTestApp({ store: counting, bindTo: request => request.headers['x-user'] as string | undefined })
  t.teardown(() => closeTestApp(test))
  const { app } = test
  const expired = '11111111-1111-4111-8111-111111111111'
  await store.create({ id: expired, waitSeconds: 1, createdAt: Date.now(), expiresAt: Date.now() - 1 })
  const own = await app.inject({ url: '/job/mine?open=1', headers: { 'x-user': 'alice', prefer: 'respond-async' } })
  const mine = (own.headers.location as string).split('?')[0] as string

  const answers = []
  for (const url of [`/async-response/${expired}`, '/async-response/22222222-2222-4222-8222-222222222222']) {
    answers.push(await app.inject({ url, headers: { 'x-user': 'alice' } }))
  }
  answers.push(await app.inject({ url: mine, headers: { 'x-user': 'bob' } }))
  answers.push(await app.inject({ url: mine }))
  const readsBefore = reads
  for (const bad of ['x', mine.slice(16, -1), mine.slice(16).toUpperCase(), `${mine.slice(16)}0`, '%00', 'a'.repeat(5000)]) {
    answers.push(await app.inject({ url: `/async-response/${bad}`, headers: { 'x-user': 'alice' } }))
  }
  t.equal(reads, readsBefore, 'malformed ids never reached the store')
  const first = answers[0]
  for (const answer of answers) {
    t.equal(answer.statusCode, 404)
    t.equal(answer.body, first?.body)
    t.equal(answer.headers['cache-control'], 'no-store')
  }
  t.match(first?.json(), { statusCode: 404, code: 'FST_LONG_RUNNING_NOT_FOUND' })
  const alice = await app.inject({ url: mine, headers: { 'x-user': 'alice', prefer: 'wait=5' } })
  t.equal(alice.statusCode, 201, 'the owner reads her result')
})

t.test('a bad hop value is a 400', async t => {
  const test = await buildTestApp()
  t.teardown(() => closeTestApp(test))
  for (const hop of ['x', '-1', '1.5', '99999']) {
    const response = await test.app.inject(`/async-response/22222222-2222-4222-8222-222222222222?hop=${hop}`)
    t.equal(response.statusCode, 400, hop)
    t.equal(response.json().code, 'FST_LONG_RUNNING_INVALID_HOP')
  }
})

t.test('a failed enqueue answers 503 with Retry-After and leaves no job behind', async t => {
  const queue = new RecordingQueue()
  queue.failSends = true
  const memory = memoryStore()
  let created: string | undefined
  let storeDown = false
  const store = spyStore(memory, {
    create: async (job) => {
      if (storeDown) throw new Error('store down')
      created = job.id
      return await memory.create(job)
    }
  })
  // Retry back-offs pass at once: the test is about what is left, not about waiting.
  const test = await buildTestApp({ queue, store, clock: new FakeClock({ autoAdvanceUpToMs: 5_000 }) })
  t.teardown(() => closeTestApp(test))
  const response = await test.app.inject('/job/x')
  t.equal(response.statusCode, 503)
  t.equal(queue.attempts, 3, 'the send was tried three times')
  t.equal(response.headers['retry-after'], '1')
  t.match(response.json(), { code: 'FST_LONG_RUNNING_ENQUEUE_FAILED' })
  t.ok(created)
  t.equal(await store.get(created as string), undefined, 'no phantom job')

  queue.failSends = false
  storeDown = true
  t.equal((await test.app.inject('/job/y')).statusCode, 503)
  t.equal(queue.sent.length, 0)
})

t.test('a client cannot pass a request for a job run by sending the run header', async t => {
  const queue = new RecordingQueue()
  const { store, requestOf } = recordingStore(memoryStore())
  const test = await buildTestApp({ queue, store, waitSeconds: 0 })
  t.teardown(() => closeTestApp(test))
  const response = await test.app.inject({ url: '/job/forged?open=1', headers: { [RUN_HEADER]: 'guess' } })
  t.equal(response.statusCode, 303)
  t.equal(test.runs.get('forged'), undefined, 'the handler did not run in the request')
  t.notOk(JSON.stringify(requestOf(queue.sent[0] as string)?.headers).includes(RUN_HEADER), 'header not forwarded')
})

t.test('Fastify\'s bodyLimit answers 413 on the HTTP side, before anything is queued', async t => {
  const queue = new RecordingQueue()
  const test = await buildTestApp({ queue }, (app) => {
    app.post('/small', { longRunning: true, bodyLimit: 1024 }, async () => 'ok')
  })
  t.teardown(() => closeTestApp(test))
  const response = await test.app.inject({ method: 'POST', url: '/small', payload: 'x'.repeat(1025), headers: { 'content-type': 'text/plain' } })
  t.equal(response.statusCode, 413)
  t.equal(queue.sent.length, 0)
})

t.test('carry must return an object of JSON values: otherwise a 500 with a stable code, nothing queued', async t => {
  const queue = new RecordingQueue()
  const values: unknown[] = [new Date(0), { when: new Date(0) }, ['a'], 'user', { n: undefined }, null]
  const test = await buildTestApp({ queue, carry: () => values.shift() as Record<string, never> })
  t.teardown(() => closeTestApp(test))
  for (const got of ['an object', 'an object', 'an array', '"user"', 'an object', 'null']) {
    const response = await test.app.inject('/job/carry?open=1')
    t.equal(response.statusCode, 500)
    t.match(response.json(), { code: 'FST_LONG_RUNNING_INVALID_CARRY', message: `Expected \`carry\` to return an object of JSON values, got ${got}` })
  }
  t.equal(queue.attempts, 0, 'nothing queued')
})

t.test('a body its parser leaves unread is read before enqueue, within the route\'s bodyLimit', async t => {
  const queue = new RecordingQueue()
  const { store, requestOf } = recordingStore(memoryStore())
  const test = await buildTestApp({ queue, store }, (app) => {
    // Like @fastify/multipart: the parser leaves the stream to the handler.
    app.addContentTypeParser('application/x-lazy', (_request, _payload, done) => done(null))
    app.post('/lazy', { longRunning: true, bodyLimit: 1024 }, async () => 'ran')
  })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const small = await fetch(`${url}/lazy`, { method: 'POST', headers: { 'content-type': 'application/x-lazy', prefer: 'respond-async' }, body: 'x'.repeat(1000) })
  t.equal(small.status, 202)
  t.equal(requestOf(queue.sent[0] as string)?.body?.toString(), 'x'.repeat(1000), 'the whole body travels with the job')
  const large = await fetch(`${url}/lazy`, { method: 'POST', headers: { 'content-type': 'application/x-lazy' }, body: 'x'.repeat(5000) })
  t.equal(large.status, 413)
  t.match(await large.json(), { code: 'FST_LONG_RUNNING_BODY_TOO_LARGE' })
  t.equal(queue.sent.length, 1, 'nothing more queued')
})

t.test('routes declared before the plugin loaded are named in a warning, never silently left synchronous', async t => {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done() } })
  const app = Fastify({ logger: { level: 'warn', stream } })
  t.teardown(async () => await app.close())
  app.get('/early', { longRunning: true }, async () => 'ran in the request')
  app.register(longRunning) // not awaited: the next route is declared before the plugin loads too
  app.post('/also-early', { longRunning: true }, async () => 'ran in the request')
  await app.ready()
  t.match(lines, [{ level: 40, routes: ['GET /early', 'POST /also-early'], msg: /loaded after these routes were declared/ }])

  const quiet: unknown[] = []
  const ordered = Fastify({ logger: { level: 'warn', stream: new Writable({ write (chunk, _encoding, done) { quiet.push(chunk); done() } }) } })
  t.teardown(async () => await ordered.close())
  await ordered.register(longRunning)
  ordered.get('/later', { longRunning: true }, async () => 'a job')
  await ordered.ready()
  t.same(quiet, [], 'no warning when the plugin comes first')
})

t.test('in a Lambda function the wait ends before the invocation does, with a 303', async t => {
  const test = await buildTestApp({ waitSeconds: 600 }, (app) => {
    // As @fastify/aws-lambda decorates it: an invocation with 1.5 s left.
    app.addHook('onRequest', async (request) => {
      Object.assign(request, { awsLambda: { event: {}, context: { getRemainingTimeInMillis: () => 1500 } } })
    })
  })
  t.teardown(() => closeTestApp(test))
  const response = await test.app.inject('/job/never-opened')
  t.equal(response.statusCode, 303, 'not a 600 s wait that the platform would cut')
})
