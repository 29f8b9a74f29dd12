import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { buildApp } from '../../example/app.js'
import { fetchLongRunning, type FetchLongRunningOptions } from '../../src/client/index.js'
import { closeTestApp, buildTestApp } from '../helpers/app.js'
import { clientScenario, recordingFetch } from '../helpers/client-scenario.js'
import { startDropProxy } from '../helpers/drop-proxy.js'

// The client in this process, over real HTTP: the example's scenario (npm-start.test.ts and
// dev-aws.test.ts run it against `npm start` and `npm run dev:aws`), then every path of the
// client on servers built to take it there. Faults are real (a proxy that drops a connection)
// or injected by a custom `fetch` around the real one, never a mocked server.

async function listen (t: Test, app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
}

t.test('the example, embedded, in this process', async t => {
  await clientScenario(t, await listen(t, await buildApp({ waitSeconds: 25 })))
})

t.test('an abort while the client waits on a status request cancels the job at once', async t => {
  const url = await listen(t, await buildApp({ waitSeconds: 25 }))
  const controller = new AbortController()
  const recording = recordingFetch()
  const call = fetchLongRunning(`${url}/payload?delay=60`, {}, {
    signal: controller.signal,
    fetch: recording.fetch,
    // The first status names the job: abort on the status request after it.
    onProgress: () => { setImmediate(() => controller.abort(new DOMException('stop', 'AbortError'))) }
  })
  await t.rejects(call, { name: 'AbortError', message: 'stop' })
  const deleted = await recording.deleted
  t.equal(deleted.status, 204)
  t.equal((await fetch(deleted.url)).status, 409)
})

t.test('an abort while the client sleeps before asking again rejects at once', async t => {
  const test = await buildTestApp({ waitSeconds: 0 })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const controller = new AbortController()
  // The route waits 0 s, so its 202 says Retry-After: 1: the abort comes during that second.
  const call = fetchLongRunning(`${url}/job/sleepy`, {}, { signal: controller.signal, onProgress: () => { setImmediate(() => controller.abort()) } })
  await t.rejects(call, { name: 'AbortError' })
  const now = new AbortController()
  await t.rejects(fetchLongRunning(`${url}/job/sleepy`, {}, { signal: now.signal, onProgress: () => now.abort() }), { name: 'AbortError' }, 'aborted in onProgress itself')
  test.gates.open('sleepy')
})

t.test('timeoutMs: the call rejects with a TimeoutError and the job is cancelled', async t => {
  const url = await listen(t, await buildApp({ waitSeconds: 25 }))
  const recording = recordingFetch()
  await t.rejects(fetchLongRunning(`${url}/payload?delay=60`, {}, { timeoutMs: 2500, waitSeconds: 1, fetch: recording.fetch }), { name: 'TimeoutError' })
  t.equal((await recording.deleted).status, 204)
})

t.test('a signal aborted before the call sends nothing', async t => {
  let sent = 0
  const fetcher = async (request: Request): Promise<Response> => { sent++; return await fetch(request) }
  await t.rejects(fetchLongRunning('http://127.0.0.1:9/never', {}, { signal: AbortSignal.abort(), fetch: fetcher }), { name: 'AbortError' })
  await t.rejects(fetchLongRunning('http://127.0.0.1:9/never', { signal: AbortSignal.abort() }, { fetch: fetcher }), { name: 'AbortError' })
  await t.rejects(fetchLongRunning(new Request('http://127.0.0.1:9/never', { signal: AbortSignal.abort() }), {}, { fetch: fetcher }), { name: 'AbortError' })
  t.equal(sent, 0)
})

t.test('an abort after the call resolved cancels nothing', async t => {
  const url = await listen(t, await buildApp({ waitSeconds: 25 }))
  const controller = new AbortController()
  const methods: string[] = []
  const response = await fetchLongRunning(`${url}/payload?delay=1.5`, {}, {
    signal: controller.signal,
    waitSeconds: 1,
    fetch: async request => { methods.push(request.method); return await fetch(request) }
  })
  t.equal(response.status, 200)
  controller.abort()
  await new Promise(resolve => setImmediate(resolve))
  t.notOk(methods.includes('DELETE'))
})

t.test('an abort before the first answer of an ordinary route cancels nothing', async t => {
  const app = Fastify()
  let release = (): void => {}
  const released = new Promise<void>(resolve => { release = resolve })
  app.get('/slow', async () => { await released; return 'plain' })
  const url = await listen(t, app)
  const controller = new AbortController()
  const methods: string[] = []
  const fetcher = async (request: Request): Promise<Response> => {
    methods.push(request.method)
    setImmediate(() => controller.abort())
    const response = await fetch(request)
    return response
  }
  await t.rejects(fetchLongRunning(`${url}/slow`, {}, { signal: controller.signal, fetch: fetcher }), { name: 'AbortError' })
  release()
  t.same(methods, ['GET'])
})

/** A server whose `/flaky` answers `status` (503) `failures` times, then 201; counts the requests. */
async function flaky (t: Test, failures: number, retryAfter?: string, status = 503): Promise<{ url: string, requests: Array<Record<string, string | string[] | undefined>> }> {
  const app = Fastify()
  const requests: Array<Record<string, string | string[] | undefined>> = []
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body))
  app.route({
    method: ['GET', 'POST', 'PUT'],
    url: '/flaky',
    handler: async (request, reply) => {
      requests.push(request.headers)
      if (requests.length <= failures) {
        if (retryAfter !== undefined) reply.header('retry-after', retryAfter)
        return await reply.code(status).send({ code: 'FST_LONG_RUNNING_ENQUEUE_FAILED' })
      }
      return await reply.code(201).send(request.body ?? 'ok')
    }
  })
  return { url: await listen(t, app), requests }
}

t.test('503: retried with the same Idempotency-Key, honouring Retry-After (seconds or a date)', async t => {
  for (const retryAfter of [undefined, '0', new Date(Date.now() - 1000).toUTCString(), 'soon']) {
    const { url, requests } = await flaky(t, 2, retryAfter)
    const response = await fetchLongRunning(`${url}/flaky`, { method: 'POST', body: 'b', headers: { 'content-type': 'text/plain' } })
    t.equal(response.status, 201)
    t.equal(await response.text(), 'b', 'the body is sent again on each retry')
    t.equal(requests.length, 3)
    const keys = new Set(requests.map(headers => headers['idempotency-key']))
    t.equal(keys.size, 1, 'one key for all three')
    t.match([...keys][0], /^"[0-9a-f-]{36}"$/, 'a UUID as a Structured Field string')
  }
})

t.test('503 beyond the retries is the answer; a GET or a request without a key is not retried', async t => {
  const limited = await flaky(t, 5)
  t.equal((await fetchLongRunning(`${limited.url}/flaky`, { method: 'PUT', body: 'x' }, { retries: 1 })).status, 503)
  t.equal(limited.requests.length, 2)
  const unkeyed = await flaky(t, 5)
  t.equal((await fetchLongRunning(`${unkeyed.url}/flaky`, { method: 'POST', body: 'x' }, { idempotencyKey: false })).status, 503)
  t.equal((await fetchLongRunning(`${unkeyed.url}/flaky`)).status, 503)
  t.equal(unkeyed.requests.length, 2, 'each sent once')
  t.equal(unkeyed.requests[0]?.['idempotency-key'], undefined)
  t.equal(unkeyed.requests[1]?.['idempotency-key'], undefined, 'GET gets no key')
})

t.test('a 429 to the first request is the answer: only a status request\'s is retried (test/ecosystem/client.test.ts)', async t => {
  const { url, requests } = await flaky(t, 1, '0', 429)
  t.equal((await fetchLongRunning(`${url}/flaky`, { method: 'POST', body: 'x' })).status, 429)
  t.equal(requests.length, 1)
})

t.test('the key given as an option or a header is the one sent', async t => {
  const { url, requests } = await flaky(t, 0)
  await fetchLongRunning(`${url}/flaky`, { method: 'POST', body: 'x' }, { idempotencyKey: 'order-42' })
  await fetchLongRunning(`${url}/flaky`, { method: 'POST', body: 'x', headers: { 'Idempotency-Key': 'mine' } }, { idempotencyKey: 'ignored' })
  t.same(requests.map(headers => headers['idempotency-key']), ['"order-42"', 'mine'])
})

t.test('a network failure without a key is the call\'s error; with one it is retried', async t => {
  const test = await buildTestApp({ waitSeconds: 25 })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const unkeyed = await startDropProxy(t, url)
  await t.rejects(fetchLongRunning(`${unkeyed.url}/job/lost?open=1`), TypeError, 'GET: the server cannot tell a retry from a new job')
  const keyed = await startDropProxy(t, url)
  const response = await fetchLongRunning(`${keyed.url}/job/kept?open=1`, { method: 'POST', body: 'k', headers: { 'content-type': 'text/plain' } })
  t.equal(response.status, 201)
  t.equal(test.runs.get('kept'), 1)
  const exhausted = await startDropProxy(t, url)
  await t.rejects(fetchLongRunning(`${exhausted.url}/job/gone?open=1`, { method: 'POST', body: 'k' }, { retries: 0 }), TypeError)
})

t.test('a status request lost on the network is retried; other errors are the call\'s', async t => {
  const test = await buildTestApp({ waitSeconds: 25 })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  let failures = 0
  const fetcher = (fault: Error) => async (request: Request): Promise<Response> => {
    if (request.url.includes('/async-response/') && failures === 0) {
      failures++
      throw fault
    }
    return await fetch(request)
  }
  const started = fetchLongRunning(`${url}/job/status`, {}, { waitSeconds: 0, fetch: fetcher(new TypeError('fetch failed')) })
  await test.ran('status')
  test.gates.open('status')
  t.equal((await started).status, 201)
  t.equal(failures, 1)
  failures = 0
  await t.rejects(fetchLongRunning(`${url}/job/other`, {}, { waitSeconds: 0, fetch: fetcher(new RangeError('not the network')) }), RangeError)
})

t.test('202s that are not the plugin\'s are final answers: the plugin\'s status is known by Preference-Applied alone', async t => {
  const app = Fastify()
  app.get('/own', async (_request, reply) => await reply.code(202).send({ queued: true }))
  app.get('/null', async (_request, reply) => await reply.code(202).type('application/json').send('null'))
  app.get('/text', async (_request, reply) => await reply.code(202).type('text/plain').send('later'))
  app.get('/other', async (_request, reply) => await reply.code(202).header('preference-applied', 'return=minimal').send({ id: 'x', status: 'pending', location: '/x' }))
  // A route's own final 202 whose body looks just like the plugin's status.
  app.get('/lookalike', async (_request, reply) => await reply.code(202).send({ id: 'x', status: 'pending', location: '/x' }))
  const url = await listen(t, app)
  t.same(await (await fetchLongRunning(`${url}/own`)).json(), { queued: true })
  t.equal(await (await fetchLongRunning(`${url}/text`)).text(), 'later')
  t.equal(await (await fetchLongRunning(`${url}/null`)).text(), 'null')
  t.match(await (await fetchLongRunning(`${url}/other`)).json(), { id: 'x' })
  t.match(await (await fetchLongRunning(`${url}/lookalike`)).json(), { id: 'x' }, 'no marker: the route\'s answer')

  // Responses without a URL (a custom fetch): locations resolve against the request's URL.
  const test = await buildTestApp({ waitSeconds: 25 })
  t.teardown(() => closeTestApp(test))
  const jobs = await test.listen()
  const bare = async (request: Request): Promise<Response> => {
    const response = await fetch(request)
    return new Response(response.body, { status: response.status, headers: response.headers })
  }
  const progress: string[] = []
  const call = fetchLongRunning(`${jobs}/job/bare`, {}, { fetch: bare, waitSeconds: 0, onProgress: ({ location }) => progress.push(location) })
  await test.ran('bare')
  test.gates.open('bare')
  t.equal((await call).status, 201)
  t.ok(progress.length >= 1 && progress.every(location => location.startsWith(`${jobs}/async-response/`)), 'locations resolved against the request URL')
})

t.test('progress carries the status, the fraction and the message', async t => {
  const test = await buildTestApp({ waitSeconds: 25 }, (app, gates) => {
    app.get('/steps', { longRunning: true }, async (request) => {
      request.longRunning?.progress(0.25, 'a quarter')
      await gates.get('steps').opened
      return 'done'
    })
  })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const seen: Array<{ status: string, fraction?: number, message?: string }> = []
  const response = await fetchLongRunning(`${url}/steps`, {}, {
    waitSeconds: 0,
    onProgress: ({ status, fraction, message }) => {
      seen.push({ status, fraction, message })
      if (message !== undefined) test.gates.open('steps')
    }
  })
  t.equal(await response.text(), 'done')
  t.match(seen.at(-1), { status: 'running', fraction: 0.25, message: 'a quarter' })
})

t.test('every option is checked', async t => {
  const bad: Array<[FetchLongRunningOptions, RegExp]> = [
    [{ waitSeconds: -1 }, /waitSeconds/], [{ waitSeconds: 1.5 }, /waitSeconds/],
    [{ retries: -1 }, /retries/], [{ timeoutMs: 0 }, /timeoutMs/], [{ timeoutMs: 1.5 }, /timeoutMs/], [{ timeoutMs: 2 ** 31 }, /timeoutMs/],
    [{ onProgress: 'no' as never }, /onProgress/], [{ fetch: 5 as never }, /fetch must/],
    [{ idempotencyKey: '' }, /idempotencyKey/], [{ idempotencyKey: 'a"b' }, /idempotencyKey/], [{ idempotencyKey: 'é' }, /idempotencyKey/],
    [{ idempotencyKey: 'x'.repeat(256) }, /idempotencyKey/],
    [{ allowedOrigins: 'https://a.example' as never }, /allowedOrigins/], [{ allowedOrigins: ['https://a.example/path'] }, /allowedOrigins/],
    [{ allowedOrigins: ['ftp://a.example'] }, /allowedOrigins/], [{ allowedOrigins: ['not a url'] }, /allowedOrigins/], [{ allowedOrigins: [5 as never] }, /allowedOrigins/],
    [{ timeout: 5000 } as never, /unknown option "timeout"; the options are onProgress, signal, timeoutMs/], [null as never, /options must be an object/],
    [{ signal: 'stop' as never }, /signal must be an AbortSignal/]
  ]
  for (const [options, message] of bad) await t.rejects(fetchLongRunning('http://127.0.0.1:9/', {}, options), { name: 'TypeError', message }, JSON.stringify(options))
})

t.test('a strict route\'s 409 to a retry while its job runs is followed like a status', async t => {
  const test = await buildTestApp({ waitSeconds: 25 }, (app, gates, count) => {
    app.post('/strict', { longRunning: { idempotency: { strict: true } } }, async () => {
      count('strict')
      await gates.get('strict').opened
      return { strict: true }
    })
  })
  t.teardown(() => closeTestApp(test))
  const proxy = await startDropProxy(t, await test.listen())
  const statuses: number[] = []
  const fetcher = async (request: Request): Promise<Response> => {
    const response = await fetch(request)
    statuses.push(response.status)
    // The retry met the running job: now let it finish.
    if (response.status === 409) test.gates.open('strict')
    return response
  }
  const response = await fetchLongRunning(`${proxy.url}/strict`, { method: 'POST', body: '' }, { fetch: fetcher })
  t.equal(response.status, 200)
  t.same(await response.json(), { strict: true })
  t.equal(statuses[0], 409, 'the first answer was lost; the retry got the conflict')
  t.equal(test.runs.get('strict'), 1)

  // Other 409s are answers.
  const app = Fastify()
  app.get('/other', async (_request, reply) => await reply.code(409).header('location', '/x').send({ code: 'FST_LONG_RUNNING_JOB_CANCELLED' }))
  app.get('/text', async (_request, reply) => await reply.code(409).header('location', '/x').send('busy'))
  app.get('/bare', async (_request, reply) => await reply.code(409).send({ code: 'FST_LONG_RUNNING_IDEMPOTENCY_CONFLICT' }))
  // A conflict whose Location is not a job URL of this plugin is still followed (the id is then unknown).
  app.get('/moved', async (_request, reply) => await reply.code(409).header('location', '/done').send({ code: 'FST_LONG_RUNNING_IDEMPOTENCY_CONFLICT' }))
  app.get('/done', async () => 'ok')
  // The app's error handler may reshape the body: the plugin's headers still name the conflict.
  app.get('/reshaped', async (_request, reply) => await reply.code(409).header('location', '/done').header('idempotent-replayed', 'true').send({ ok: false }))
  const url = await listen(t, app)
  const ids: string[] = []
  t.equal(await (await fetchLongRunning(`${url}/moved`, {}, { onProgress: ({ id }) => ids.push(id) })).text(), 'ok')
  t.same(ids, [''])
  t.equal((await fetchLongRunning(`${url}/other`)).status, 409)
  t.equal(await (await fetchLongRunning(`${url}/text`)).text(), 'busy')
  t.equal((await fetchLongRunning(`${url}/bare`)).status, 409)
  t.equal(await (await fetchLongRunning(`${url}/reshaped`)).text(), 'ok')
})
