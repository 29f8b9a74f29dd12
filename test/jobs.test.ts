import t from 'tap'
import { createSqsHandler, memoryStore, type JobRecord, type ResultStore } from '../src/index.js'
import { decodeMessage, encodeMessage } from '../src/job/message.js'
import { RUN_HEADER } from '../src/job/context.js'
import { buildTestApp, closeTestApp } from './helpers/app.js'
import { spyStore } from './helpers/spy-store.js'
import { lambdaContext, sqsEvent } from './helpers/events.js'
import { Gate } from './helpers/gate.js'
import { delivery, RecordingQueue } from './helpers/recording-queue.js'

// The job side driven by hand: a RecordingQueue keeps messages and the test delivers them,
// as often and as concurrently as SQS might.

async function manual (options: { store?: ResultStore, maxAttempts?: number, timeoutSeconds?: number } = {}) {
  const queue = new RecordingQueue()
  const test = await buildTestApp({ queue, waitSeconds: 0, ...options }, (app, gates) => {
    app.get('/signal', { longRunning: { timeoutSeconds: 1 } }, async (request) => {
      const job = request.longRunning
      await new Promise(resolve => job?.signal.addEventListener('abort', resolve))
      gates.open('aborted')
      return 'too late'
    })
  })
  t.teardown(() => closeTestApp(test))
  return { queue, test, app: test.app }
}

async function location (app: Awaited<ReturnType<typeof manual>>['app'], url: string, init: { method?: 'POST', payload?: string, headers?: Record<string, string> } = {}) {
  const response = await app.inject({ url, method: init.method ?? 'GET', ...(init.payload === undefined ? {} : { payload: init.payload }), headers: init.headers ?? {} })
  if (response.statusCode !== 303) throw new Error(`expected 303, got ${response.statusCode} ${response.body}`)
  return response.headers.location as string
}

t.test('a delivered job runs once with its context; a duplicate delivery never runs it again', async t => {
  const { queue, test, app } = await manual()
  const where = await location(app, '/job/ctx?open=1')
  t.equal(queue.sent.length, 1)
  const body = queue.sent[0] as string
  const message = decodeMessage(body)
  t.equal(where, `/async-response/${message.id}?hop=1`)

  t.same(await app.longRunning.handle(delivery(body)), { ack: true })
  t.same(await app.longRunning.handle(delivery(body, 2)), { ack: true }, 'duplicate acknowledged')
  t.equal(test.runs.get('ctx'), 1, 'ran once')

  const result = await app.inject(where)
  t.equal(result.statusCode, 201)
  t.equal(result.headers['x-job-id'], message.id, 'request.longRunning.id is the job id')
})

t.test('a duplicate delivered while the job runs is sent back until the lease ends', async t => {
  const { queue, test, app } = await manual()
  await location(app, '/job/dup')
  const body = queue.sent[0] as string
  const first = app.longRunning.handle(delivery(body))
  while (test.runs.get('dup') === undefined) await new Promise(resolve => setImmediate(resolve))
  const second = await app.longRunning.handle(delivery(body, 2))
  t.equal(second.ack, false, 'not acknowledged: if the first worker dies, this one takes over')
  t.ok(!second.ack && second.delaySeconds >= 1 && second.delaySeconds <= 30)
  test.gates.open('dup')
  t.same(await first, { ack: true })
  t.same(await app.longRunning.handle(delivery(body, 3)), { ack: true })
  t.equal(test.runs.get('dup'), 1)
})

t.test('a crashed attempt is retried; after maxAttempts the job ends as 502 with a stable code', async t => {
  const store = memoryStore()
  const { queue, test, app } = await manual({ store, maxAttempts: 2 })
  const where = await location(app, '/job/crash?open=1')
  const body = queue.sent[0] as string
  const { id } = decodeMessage(body)
  // Two workers claimed the job and died: their leases ended without a result.
  for (const owner of ['dead-1', 'dead-2']) {
    const claim = await store.claim(id, { owner, leaseUntil: Date.now() - 1, now: Date.now() })
    t.ok(claim.claimed)
  }
  t.same(await app.longRunning.handle(delivery(body, 3)), { ack: true })
  t.equal(test.runs.get('crash'), undefined, 'no third run')
  const result = await app.inject(where)
  t.equal(result.statusCode, 502)
  t.match(result.json(), { statusCode: 502, code: 'FST_LONG_RUNNING_ATTEMPTS_EXHAUSTED', error: 'Bad Gateway' })
})

t.test('one crash then a successful retry: the result is the retry\'s, attempt 2', async t => {
  const store = memoryStore()
  const { queue, test, app } = await manual({ store })
  const where = await location(app, '/job/retry?open=1')
  const body = queue.sent[0] as string
  const { id } = decodeMessage(body)
  await store.claim(id, { owner: 'dead', leaseUntil: Date.now() - 1, now: Date.now() })
  t.same(await app.longRunning.handle(delivery(body, 2)), { ack: true })
  t.equal(test.runs.get('retry'), 1)
  t.equal((await store.get(id))?.attempt, 2)
  t.equal((await app.inject(where)).statusCode, 201)
  t.equal(await store.complete(id, 'dead', { statusCode: 200, headers: {}, body: Buffer.from('stale') }, Date.now() + 1000), false,
    'the dead worker cannot overwrite the result')
})

t.test('a job past its timeout ends as 504, and its handler sees the signal abort', async t => {
  const { queue, test, app } = await manual()
  const where = await location(app, '/signal')
  t.same(await app.longRunning.handle(delivery(queue.sent[0] as string)), { ack: true })
  await test.gates.get('aborted').opened
  const result = await app.inject(where)
  t.equal(result.statusCode, 504)
  t.match(result.json(), { statusCode: 504, code: 'FST_LONG_RUNNING_JOB_TIMEOUT', message: 'The job did not finish within 1 seconds' })
})

t.test('invalid messages are dropped, never retried', async t => {
  const { app } = await manual()
  const good = JSON.parse(encodeMessage({ id: '00000000-0000-4000-8000-000000000000', timeoutSeconds: 1, maxAttempts: 1, resultTtlSeconds: 1 }))
  const bodies = ['', 'not json', '[]', '{"v":2}', JSON.stringify({ ...good, v: 2 }), JSON.stringify({ ...good, id: 'x' }),
    JSON.stringify({ ...good, maxAttempts: 0 }), JSON.stringify({ ...good, request: { method: 'get', url: '/', headers: {} } }),
    JSON.stringify({ ...good, request: { method: 'GET', url: 'http://x/', headers: {} } }),
    JSON.stringify({ ...good, request: { method: 'GET', url: '/', headers: { a: 1 } } }),
    JSON.stringify({ ...good, request: { method: 'GET', url: '/', headers: {}, body: '!!' } }),
    JSON.stringify({ ...good, request: 'x' })]
  for (const body of bodies) t.same(await app.longRunning.handle(delivery(body)), { ack: true }, JSON.stringify(body).slice(0, 60))
  t.same(await app.longRunning.handle(delivery(JSON.stringify(good))), { ack: true }, 'unknown job: acknowledged')
})

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
  await store.create({ id: expired, waitSeconds: 1, expiresAt: Date.now() - 1 })
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
  const test = await buildTestApp({ queue, store })
  t.teardown(() => closeTestApp(test))
  const response = await test.app.inject('/job/x')
  t.equal(response.statusCode, 503)
  t.equal(response.headers['retry-after'], '1')
  t.match(response.json(), { code: 'FST_LONG_RUNNING_ENQUEUE_FAILED' })
  t.ok(created)
  t.equal(await store.get(created as string), undefined, 'no phantom job')

  queue.failSends = false
  storeDown = true
  t.equal((await test.app.inject('/job/y')).statusCode, 503)
  t.equal(queue.sent.length, 0)
})

t.test('a request too large for the queue travels through the store (claim-check)', async t => {
  const queue = new RecordingQueue()
  queue.maxMessageBytes = 1024
  const test = await buildTestApp({ queue, waitSeconds: 0 })
  t.teardown(() => closeTestApp(test))
  const payload = 'z'.repeat(4000)
  const where = await location(test.app, '/job/big?open=1', { method: 'POST', payload, headers: { 'content-type': 'text/plain' } })
  const body = queue.sent[0] as string
  t.ok(Buffer.byteLength(body) <= 1024)
  t.equal(decodeMessage(body).request, undefined)
  await test.app.longRunning.handle(delivery(body))
  const result = await test.app.inject(where)
  t.equal(result.statusCode, 201)
  t.equal(result.body, payload)
})

t.test('a client cannot pass a request for a job run by sending the run header', async t => {
  const queue = new RecordingQueue()
  const test = await buildTestApp({ queue, waitSeconds: 0 })
  t.teardown(() => closeTestApp(test))
  const response = await test.app.inject({ url: '/job/forged?open=1', headers: { [RUN_HEADER]: 'guess' } })
  t.equal(response.statusCode, 303)
  t.equal(test.runs.get('forged'), undefined, 'the handler did not run in the request')
  t.notOk(JSON.stringify(decodeMessage(queue.sent[0] as string).request?.headers).includes(RUN_HEADER), 'header not forwarded')
})

t.test('request.longRunning is null outside jobs; HEAD of a long-running GET is a job too', async t => {
  const queue = new RecordingQueue()
  const test = await buildTestApp({ queue, waitSeconds: 0 }, (app) => {
    app.get('/ordinary', async (request) => ({ job: request.longRunning }))
  })
  t.teardown(() => closeTestApp(test))
  t.same((await test.app.inject('/ordinary')).json(), { job: null })
  const head = await test.app.inject({ method: 'HEAD', url: '/job/h?open=1' })
  t.equal(head.statusCode, 303)
  t.equal(decodeMessage(queue.sent[0] as string).request?.method, 'HEAD')
  await test.app.longRunning.handle(delivery(queue.sent[0] as string))
  const result = await test.app.inject({ method: 'HEAD', url: head.headers.location as string })
  t.equal(result.statusCode, 201)
  t.equal(result.body, '')
})

t.test('while a job runs its lease is renewed and the message kept hidden', async t => {
  const queue = new RecordingQueue()
  const test = await buildTestApp({ queue, waitSeconds: 0, leaseSeconds: 3 })
  t.teardown(() => closeTestApp(test))
  await location(test.app, '/job/long')
  const renewed = new Gate()
  const handled = test.app.longRunning.handle({ body: queue.sent[0] as string, receiveCount: 1, extend: async (seconds) => { t.equal(seconds, 3); renewed.open() } })
  await renewed.opened
  test.gates.open('long')
  t.same(await handled, { ack: true })
})

t.test('a worker that loses its claim stops and leaves the result to the new owner', async t => {
  const queue = new RecordingQueue()
  const memory = memoryStore()
  const completions: string[] = []
  const store = spyStore(memory, {
    renew: async () => false,
    complete: async (id, owner, response, expiresAt) => { completions.push(owner); return await memory.complete(id, owner, response, expiresAt) }
  })
  const test = await buildTestApp({ queue, store, waitSeconds: 0, leaseSeconds: 3 })
  t.teardown(() => closeTestApp(test))
  await location(test.app, '/job/lost')
  const disposition = await test.app.longRunning.handle(delivery(queue.sent[0] as string))
  t.same(disposition, { ack: false, delaySeconds: 0 }, 'the message comes back')
  t.same(completions, [], 'nothing stored by the stale worker')
})

t.test('a worker out of time (Lambda deadline) or shutting down releases the claim at once', async t => {
  const queue = new RecordingQueue()
  const store = memoryStore()
  const test = await buildTestApp({ queue, store, waitSeconds: 0 })
  t.teardown(() => closeTestApp(test))
  await location(test.app, '/job/deadline')
  const body = queue.sent[0] as string
  const { id } = decodeMessage(body)
  t.same(await test.app.longRunning.handle(delivery(body), { deadline: Date.now() + 500 }), { ack: false, delaySeconds: 0 })
  t.match(await store.get(id), { status: 'running', attempt: 1 })
  t.ok(((await store.get(id))?.leaseUntil ?? 1) < Date.now(), 'lease released: the next delivery need not wait')

  const second = test.app.longRunning.handle(delivery(body, 2))
  while (test.runs.get('deadline') !== 2) await new Promise(resolve => setImmediate(resolve))
  await test.app.close()
  t.same(await second, { ack: false, delaySeconds: 0 }, 'shutdown: back to the queue')
  t.same(await test.app.longRunning.handle(delivery(body, 3)), { ack: false, delaySeconds: 0 }, 'after shutdown nothing runs')
})

t.test('a job whose request is in neither message nor store ends with a stable error', async t => {
  const queue = new RecordingQueue()
  const store = memoryStore()
  const test = await buildTestApp({ queue, store })
  t.teardown(() => closeTestApp(test))
  const id = '33333333-3333-4333-8333-333333333333'
  await store.create({ id, waitSeconds: 0, expiresAt: Date.now() + 60_000 })
  const body = encodeMessage({ id, timeoutSeconds: 5, maxAttempts: 1, resultTtlSeconds: 60 })
  t.same(await test.app.longRunning.handle(delivery(body)), { ack: true })
  const result = await test.app.inject(`/async-response/${id}`)
  t.equal(result.statusCode, 500)
  t.equal(result.json().code, 'FST_LONG_RUNNING_INVALID_MESSAGE')
})

t.test('a store without a change feed is polled, and waiters still get the result', async t => {
  const memory = memoryStore()
  const store = spyStore(memory, { watch: undefined, getMany: undefined })
  const test = await buildTestApp({ store, waitSeconds: 10, pollIntervalMs: 10 })
  t.teardown(() => closeTestApp(test))
  const pending = test.app.inject('/job/polled')
  while (test.runs.get('polled') === undefined) await new Promise(resolve => setImmediate(resolve))
  test.gates.open('polled')
  t.equal((await pending).statusCode, 201)
})

t.test('a bad progress report throws at the call, in the handler', async t => {
  const test = await buildTestApp({ waitSeconds: 10 }, (app) => {
    app.get<{ Querystring: { fraction: string, message?: string } }>('/report', { longRunning: true }, async (request) => {
      const fraction = Number(request.query.fraction)
      request.longRunning?.progress(Number.isNaN(fraction) ? request.query.fraction as unknown as number : fraction, request.query.message)
      return 'reported'
    })
  })
  t.teardown(() => closeTestApp(test))
  t.equal((await test.app.inject('/report?fraction=1&message=ok')).body, 'reported')
  for (const [query, message] of [
    ['fraction=2', 'Expected `fraction` to be a number from 0 to 1, got 2'],
    ['fraction=x', 'Expected `fraction` to be a number from 0 to 1, got x'],
    [`fraction=0.5&message=${'m'.repeat(1001)}`, 'Expected `message` to be a string of at most 1000 characters']
  ]) {
    const response = await test.app.inject(`/report?${query}`)
    t.equal(response.statusCode, 500)
    t.equal(response.json().message, message)
  }
})

t.test('dropHeaders keeps credentials out of the queue; the auth hook skips job runs', async t => {
  const queue = new RecordingQueue()
  const seen: Array<string | undefined> = []
  const test = await buildTestApp({ queue, waitSeconds: 0, dropHeaders: ['authorization', 'cookie'] }, (app) => {
    app.register(async (secured) => {
      secured.addHook('onRequest', async (request, reply) => {
        if (request.longRunning !== null) return // authenticated when the job was accepted
        if (request.headers.authorization !== 'Bearer ok') await reply.code(401).send()
      })
      secured.get('/private', { longRunning: true }, async (request) => {
        seen.push(request.headers.authorization, request.headers.cookie)
        return { job: request.longRunning?.id }
      })
    })
  })
  t.teardown(() => closeTestApp(test))
  const accepted = await test.app.inject({ url: '/private', headers: { authorization: 'Bearer ok', cookie: 'session=secret', 'x-kept': 'yes' } })
  t.equal(accepted.statusCode, 303)
  const body = queue.sent[0] as string
  t.notMatch(body, /Bearer|secret/, 'no credentials in the message')
  t.equal(decodeMessage(body).request?.headers['x-kept'], 'yes')
  t.same(await test.app.longRunning.handle(delivery(body)), { ack: true })
  t.same(seen, [undefined, undefined])
  const result = await test.app.inject({ url: accepted.headers.location as string, headers: { authorization: 'Bearer ok' } })
  t.equal(result.statusCode, 200)
})

t.test('a response over 6 MiB ends as a 502 with a stable code, nothing half-stored', async t => {
  const test = await buildTestApp({ waitSeconds: 10 }, (app) => {
    app.get('/huge', { longRunning: true }, async (_request, reply) => await reply.type('application/octet-stream').send(Buffer.alloc(6 * 1024 * 1024 + 1)))
    app.get('/limit', { longRunning: true }, async (_request, reply) => await reply.type('application/octet-stream').send(Buffer.alloc(6 * 1024 * 1024, 1)))
  })
  t.teardown(() => closeTestApp(test))
  const huge = await test.app.inject('/huge')
  t.equal(huge.statusCode, 502)
  t.match(huge.json(), { code: 'FST_LONG_RUNNING_RESPONSE_TOO_LARGE', message: 'The response has 6291457 bytes, more than the 6291456 bytes a job result may have' })
  const limit = await test.app.inject('/limit')
  t.equal(limit.statusCode, 200)
  t.equal(limit.rawPayload.length, 6 * 1024 * 1024, 'exactly 6 MiB is fine')
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

t.test('the Lambda consumer hands back a record whose delivery failed (the store was down)', async t => {
  const memory = memoryStore()
  const store = spyStore(memory, { claim: async () => { throw new Error('store down') } })
  const queue = new RecordingQueue()
  const test = await buildTestApp({ queue, store, waitSeconds: 0 })
  t.teardown(() => closeTestApp(test))
  await location(test.app, '/job/later?open=1')
  const worker = createSqsHandler(test.app)
  const event = sqsEvent([queue.sent[0] as string])
  t.same(await worker(event, lambdaContext()), { batchItemFailures: [{ itemIdentifier: event.Records[0]?.messageId }] })
  t.equal(test.runs.get('later'), undefined)
})
