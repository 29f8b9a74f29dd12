import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import longRunning, { createSqsHandler, memoryStore, type LongRunningOptions } from '../../src/index.js'
import { decodeMessage, encodeMessage, messageDigest } from '../../src/job/message.js'
import { buildTestApp, closeTestApp, untilAborted } from '../helpers/app.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { recordingStore, spyStore } from '../helpers/spy-store.js'
import { lambdaContext, sqsEvent } from '../helpers/events.js'
import { delivery, RecordingQueue } from '../helpers/recording-queue.js'

// The job side driven by hand: a RecordingQueue keeps messages and the test delivers them,
// as often and as concurrently as SQS might.

async function manual (options: LongRunningOptions = {}, more?: (app: FastifyInstance) => void) {
  const queue = new RecordingQueue()
  const test = await buildTestApp({ queue, waitSeconds: 0, ...options }, (app, gates, count) => {
    more?.(app)
    // Runs until its signal aborts, at the plugin's default timeout (15 minutes).
    app.get('/signal', { longRunning: true }, async (request) => {
      count('signal')
      await untilAborted(request.longRunning?.signal)
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
  await test.ran('dup')
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
  // Two workers claimed the job with its message and died: their leases ended without a result.
  for (const owner of ['dead-1', 'dead-2']) {
    const claim = await store.claim(id, { owner, leaseUntil: Date.now() - 1, now: Date.now(), messageDigest: messageDigest(JSON.parse(body)) })
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
  await store.claim(id, { owner: 'dead', leaseUntil: Date.now() - 1, now: Date.now(), messageDigest: messageDigest(JSON.parse(body)) })
  t.same(await app.longRunning.handle(delivery(body, 2)), { ack: true })
  t.equal(test.runs.get('retry'), 1)
  t.equal((await store.get(id))?.attempt, 2)
  t.equal((await app.inject(where)).statusCode, 201)
  t.equal(await store.complete(id, 'dead', { statusCode: 200, headers: {}, body: Buffer.from('stale') }, Date.now() + 1000), false,
    'the dead worker cannot overwrite the result')
})

t.test('a job past its timeout ends as 504, and its handler sees the signal abort', async t => {
  const clock = new FakeClock()
  const { queue, test, app } = await manual({ clock })
  const where = await location(app, '/signal')
  const handled = app.longRunning.handle(delivery(queue.sent[0] as string))
  await test.ran('signal')
  await clock.advance(900_000 - 1)
  t.notOk(test.gates.get('aborted').isOpen, 'not a moment early')
  await clock.advance(1)
  t.same(await handled, { ack: true })
  t.ok(test.gates.get('aborted').isOpen)
  const result = await app.inject(where)
  t.equal(result.statusCode, 504)
  t.match(result.json(), { statusCode: 504, code: 'FST_LONG_RUNNING_JOB_TIMEOUT', message: 'The job did not finish within 900 seconds' })
})

t.test('invalid messages are dropped, never retried', async t => {
  const { app } = await manual()
  const good = JSON.parse(encodeMessage({ id: '00000000-0000-4000-8000-000000000000', timeoutSeconds: 1, maxAttempts: 1, resultTtlSeconds: 1 }))
  const bodies = ['', 'not json', '[]', '{"v":2}', JSON.stringify({ ...good, v: 2 }), JSON.stringify({ ...good, id: 'x' }),
    JSON.stringify({ ...good, maxAttempts: 0 }), JSON.stringify({ ...good, backup: false }), JSON.stringify({ ...good, backup: 'yes' }),
    JSON.stringify({ ...good, requestId: 5 }), JSON.stringify({ ...good, requestId: '' }), JSON.stringify({ ...good, requestId: 'a b' }), JSON.stringify({ ...good, requestId: 'x'.repeat(129) }),
    JSON.stringify({ ...good, request: { method: 'get', url: '/', headers: {} } }),
    JSON.stringify({ ...good, request: { method: 'FOO', url: '/', headers: {} } }),
    JSON.stringify({ ...good, request: { method: 'GET', url: '/', headers: {}, origin: { ip: '', protocol: 'http', host: 'h' } } }),
    JSON.stringify({ ...good, request: { method: 'GET', url: '/', headers: {}, origin: { ip: '1.2.3.4', protocol: 'ftp', host: 'h' } } }),
    JSON.stringify({ ...good, request: { method: 'GET', url: '/', headers: {}, origin: { ip: '1.2.3.4', protocol: 'http', host: 'a b' } } }),
    JSON.stringify({ ...good, request: { method: 'GET', url: '/', headers: {}, carried: [1] } }),
    JSON.stringify({ ...good, request: { method: 'GET', url: 'http://x/', headers: {} } }),
    JSON.stringify({ ...good, request: { method: 'GET', url: '/', headers: { a: 1 } } }),
    JSON.stringify({ ...good, request: { method: 'GET', url: '/', headers: {}, body: '!!' } }),
    JSON.stringify({ ...good, request: 'x' })]
  for (const body of bodies) t.same(await app.longRunning.handle(delivery(body)), { ack: true }, JSON.stringify(body).slice(0, 60))
  t.same(await app.longRunning.handle(delivery(JSON.stringify(good))), { ack: true }, 'unknown job: acknowledged')
  // Younger than any record lives: not expired, so not this store's (another app's, say).
  t.same(await app.longRunning.handle(delivery(JSON.stringify({ ...good, enqueuedAt: Date.now(), resultTtlSeconds: 3600 }))), { ack: true }, 'unknown recent job: acknowledged')
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

t.test('request.longRunning is null outside jobs; HEAD of a long-running GET is a job run as GET, answered with its length', async t => {
  const queue = new RecordingQueue()
  const { store, requestOf } = recordingStore(memoryStore())
  const test = await buildTestApp({ queue, store, waitSeconds: 0 }, (app) => {
    app.get('/ordinary', async (request) => ({ job: request.longRunning }))
  })
  t.teardown(() => closeTestApp(test))
  t.same((await test.app.inject('/ordinary')).json(), { job: null })
  const head = await test.app.inject({ method: 'HEAD', url: '/job/h?open=1' })
  t.equal(head.statusCode, 303)
  t.equal(requestOf(queue.sent[0] as string)?.method, 'GET')
  await test.app.longRunning.handle(delivery(queue.sent[0] as string))
  const result = await test.app.inject({ method: 'HEAD', url: head.headers.location as string })
  const get = await test.app.inject({ method: 'GET', url: head.headers.location as string })
  t.equal(result.statusCode, 201)
  t.equal(result.body, '')
  t.equal(result.headers['content-length'], String(get.rawPayload.length), 'the GET\'s length')
  t.ok(get.rawPayload.length > 0)
})

t.test('while a job runs its lease is renewed every third of it and the message kept hidden', async t => {
  const clock = new FakeClock()
  const store = memoryStore()
  const { queue, test, app } = await manual({ clock, store, leaseSeconds: 30 })
  await location(app, '/job/long')
  const extended: number[] = []
  const handled = app.longRunning.handle({ body: queue.sent[0] as string, receiveCount: 1, extend: async (seconds) => { extended.push(seconds) } })
  await test.ran('long')
  const { id } = decodeMessage(queue.sent[0] as string)
  const leaseBefore = (await store.get(id))?.leaseUntil as number
  await clock.advance(9_999)
  t.same(extended, [], 'not before a third of the lease')
  await clock.advance(1)
  t.same(extended, [30], 'the message hidden for another lease')
  t.ok(((await store.get(id))?.leaseUntil as number) >= leaseBefore + 10_000, 'the claim extended')
  await clock.advance(10_000)
  t.same(extended, [30, 30])
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
  const clock = new FakeClock()
  const reasons: unknown[] = []
  const test = await buildTestApp({ queue, store, waitSeconds: 0, leaseSeconds: 3, clock }, (app, _gates, count) => {
    app.get('/lost', { longRunning: true }, async (request) => {
      count('lost')
      reasons.push(await untilAborted(request.longRunning?.signal))
      return 'lost'
    })
  })
  t.teardown(() => closeTestApp(test))
  await location(test.app, '/lost')
  const handled = test.app.longRunning.handle(delivery(queue.sent[0] as string))
  await test.ran('lost')
  await clock.advance(1000)
  t.same(await handled, { ack: false, delaySeconds: 0 }, 'the message comes back')
  t.match(reasons, [{ code: 'FST_LONG_RUNNING_LEASE_LOST' }], 'the handler learns why')
  t.same(completions, [], 'nothing stored by the stale worker')
})

t.test('an attempt that reaches the worker\'s deadline (Lambda) ends the job with 504, its record done', async t => {
  const clock = new FakeClock()
  const store = memoryStore()
  const { queue, test, app } = await manual({ clock, store })
  const where = await location(app, '/signal')
  const { id } = decodeMessage(queue.sent[0] as string)
  // A Lambda invocation with 60 s left: the attempt stops a second before, to store its answer.
  const handled = app.longRunning.handle(delivery(queue.sent[0] as string), { deadline: clock.now() + 60_000 })
  await test.ran('signal')
  await clock.advance(59_000)
  t.same(await handled, { ack: true }, 'not handed back for a retry that would only time out again')
  t.ok(test.gates.get('aborted').isOpen, 'the handler saw its signal abort')
  t.match(await store.get(id), { status: 'done', response: { statusCode: 504 } })
  const result = await app.inject(where)
  t.equal(result.statusCode, 504)
  t.match(result.json(), { code: 'FST_LONG_RUNNING_JOB_TIMEOUT', message: 'The job did not finish within 59 seconds' })
})

t.test('a worker shutting down hands its attempt back at once, its claim released', async t => {
  const queue = new RecordingQueue()
  const store = memoryStore()
  const test = await buildTestApp({ queue, store, waitSeconds: 0 })
  t.teardown(() => closeTestApp(test))
  await location(test.app, '/job/closing')
  const body = queue.sent[0] as string
  const { id } = decodeMessage(body)
  const handled = test.app.longRunning.handle(delivery(body))
  await test.ran('closing')
  await test.app.close()
  t.same(await handled, { ack: false, delaySeconds: 0 }, 'shutdown: back to the queue')
  t.ok(((await store.get(id))?.leaseUntil ?? Infinity) < Date.now(), 'lease released: the next delivery need not wait')
  t.same(await test.app.longRunning.handle(delivery(body, 2)), { ack: false, delaySeconds: 0 }, 'after shutdown nothing runs')
})

t.test('a job whose request is in neither message nor store ends with a stable error', async t => {
  const queue = new RecordingQueue()
  const store = memoryStore()
  const test = await buildTestApp({ queue, store })
  t.teardown(() => closeTestApp(test))
  const id = '33333333-3333-4333-8333-333333333333'
  await store.create({ id, waitSeconds: 0, createdAt: Date.now(), expiresAt: Date.now() + 60_000 })
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
  await test.ran('polled')
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
  const { store, requestOf } = recordingStore(memoryStore())
  const seen: Array<string | undefined> = []
  const test = await buildTestApp({ queue, store, waitSeconds: 0, dropHeaders: ['authorization', 'cookie'] }, (app) => {
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
  t.notMatch(JSON.stringify(requestOf(body)), /Bearer|secret/, 'nor in the store')
  t.equal(requestOf(body)?.headers['x-kept'], 'yes')
  t.same(await test.app.longRunning.handle(delivery(body)), { ack: true })
  t.same(seen, [undefined, undefined])
  const result = await test.app.inject({ url: accepted.headers.location as string, headers: { authorization: 'Bearer ok' } })
  t.equal(result.statusCode, 200)
})

t.test('a response over 6 MiB ends as a 502 with a stable code, nothing half-stored', async t => {
  const store = memoryStore()
  const ended: string[] = []
  const test = await buildTestApp({ waitSeconds: 10, store, onJobEnd: job => ended.push(job.id) }, (app) => {
    app.get('/huge', { longRunning: true }, async (_request, reply) => await reply.type('application/octet-stream').send(Buffer.alloc(6 * 1024 * 1024 + 1)))
    app.get('/limit', { longRunning: true }, async (_request, reply) => await reply.type('application/octet-stream').send(Buffer.alloc(6 * 1024 * 1024, 1)))
  })
  t.teardown(() => closeTestApp(test))
  const huge = await test.app.inject('/huge')
  t.equal(huge.statusCode, 502)
  t.match(huge.json(), { code: 'FST_LONG_RUNNING_RESPONSE_TOO_LARGE', message: 'The response has 6291457 bytes, more than the 6291456 bytes a job result may have' })
  const stored = (await store.get(ended[0] as string))?.response
  t.equal(stored?.statusCode, 502, 'the stored answer is the error')
  t.same(stored?.headers, { 'content-type': 'application/json; charset=utf-8' }, 'none of the route\'s headers')
  t.ok(stored?.body.equals(huge.rawPayload), 'and only the error\'s bytes: nothing of the 6 MiB kept')
  const limit = await test.app.inject('/limit')
  t.equal(limit.statusCode, 200)
  t.equal(limit.rawPayload.length, 6 * 1024 * 1024, 'exactly 6 MiB is fine')
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

t.test('a delivery that arrives while the app is closing goes back to the queue, its claim released', async t => {
  const store = memoryStore()
  let closing = async (): Promise<void> => {}
  // onClose hooks run last-registered first: this one runs before the plugin's own shutdown,
  // while Fastify already refuses to inject.
  const { queue, app } = await manual({ store }, app => app.addHook('onClose', async () => { await closing() }))
  await location(app, '/job/closing?open=1')
  const body = queue.sent[0] as string
  const { id } = decodeMessage(body)
  let disposition
  closing = async () => { disposition = await app.longRunning.handle(delivery(body)) }
  await app.close()
  t.same(disposition, { ack: false, delaySeconds: 0 })
  t.match(await store.get(id), { status: 'running', attempt: 1 })
  t.ok(((await store.get(id))?.leaseUntil ?? Infinity) < Date.now(), 'claim released: the next delivery need not wait')
})

t.test('a message holds only the characters SQS accepts, whatever the carried values', async t => {
  // SendMessage: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
  const SQS_CHARACTERS = /^[\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u
  const carried = { text: 'a\uFFFE\uFFFFb\u0000\u001F\uD800\uDC00\uDBFF\uFFFD' }
  const body = encodeMessage({ id: '00000000-0000-4000-8000-000000000000', timeoutSeconds: 1, maxAttempts: 1, resultTtlSeconds: 1, request: { method: 'GET', url: '/', headers: {}, carried } })
  t.ok(SQS_CHARACTERS.test(body), 'only characters SQS accepts')
  t.same(decodeMessage(body).request?.carried, carried, 'and the values come back unchanged')
})

t.test('closing with an in-process job that outlasts the grace ends within Fastify\'s pluginTimeout, not with AVV_ERR_READY_TIMEOUT', async t => {
  // Real time: what is measured is Fastify's own close timeout (2 s here; 10 s by default).
  const app = Fastify({ pluginTimeout: 2000 })
  await app.register(longRunning, { waitSeconds: 0 })
  let stopped: unknown
  app.get('/long', { longRunning: true }, async (request) => {
    await untilAborted(request.longRunning?.signal)
    stopped = request.longRunning?.signal.reason
    return 'stopped'
  })
  const accepted = await app.inject({ url: '/long', headers: { prefer: 'respond-async' } })
  t.equal(accepted.statusCode, 202)
  await t.resolves(app.close(), 'closed, the grace (closeGraceSeconds 10) cut to a second under pluginTimeout')
  t.match(stopped, { code: 'FST_LONG_RUNNING_WORKER_STOPPING' }, 'the job was stopped at close')
})
