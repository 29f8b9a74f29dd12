import { getEventListeners } from 'node:events'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { fetchLongRunning } from '../../src/client/index.js'
import { retryAfterMs } from '../../src/client/waiting.js'
import { buildTestApp, closeTestApp } from '../helpers/app.js'

// What the client trusts (issue 24, point 5): job URLs only on the first request's origin or an
// allowed one, no credentials or cancellation across origins, Retry-After read strictly with a
// floor under it, and no listener left behind per status request. Real servers on 127.0.0.1;
// `localhost` on another port is another origin.

async function listen (t: Test, app: FastifyInstance, host = '127.0.0.1'): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return `http://${host}:${(app.server.address() as { port: number }).port}`
}

/** An app whose `/start` answers the plugin's 202 naming `location`; records every request. */
async function pointingAt (t: Test, location: (url: string) => string): Promise<{ url: string, seen: Array<{ method: string, url: string }> }> {
  const seen: Array<{ method: string, url: string }> = []
  const app = Fastify()
  app.addHook('onRequest', async request => { seen.push({ method: request.method, url: request.url }) })
  let url = ''
  app.get('/start', async (_request, reply) => await reply.code(202).header('preference-applied', 'respond-async').header('retry-after', '0')
    .send({ id: 'j', status: 'pending', location: location(url) }))
  url = await listen(t, app)
  return { url, seen }
}

/** A server elsewhere that records the headers of each request it gets and answers 200 `there`. */
async function elsewhere (t: Test): Promise<{ origin: string, requests: Array<Record<string, unknown>> }> {
  const requests: Array<Record<string, unknown>> = []
  const app = Fastify()
  app.all('/*', async request => {
    requests.push({ method: request.method, ...request.headers })
    return 'there'
  })
  return { origin: await listen(t, app, 'localhost'), requests }
}

t.test('a job URL on another origin is not followed unless allowed', async t => {
  const other = await elsewhere(t)
  const { url } = await pointingAt(t, () => `${other.origin}/async-response/j`)
  await t.rejects(fetchLongRunning(`${url}/start`, { headers: { authorization: 'Bearer secret' } }), { name: 'TypeError', message: /allowedOrigins/ })
  t.same(other.requests, [], 'nothing was sent there')
})

t.test('an allowed other origin gets no credentials, no headers of the caller and no DELETE', async t => {
  const other = await elsewhere(t)
  const { url } = await pointingAt(t, () => `${other.origin}/async-response/j`)
  const response = await fetchLongRunning(`${url}/start`, { headers: { authorization: 'Bearer secret', 'x-api-key': 'k', cookie: 'sid=1' } }, { allowedOrigins: [other.origin] })
  t.equal(await response.text(), 'there')
  t.equal(other.requests.length, 1)
  t.notOk(other.requests[0]?.authorization)
  t.notOk(other.requests[0]?.['x-api-key'])
  t.notOk(other.requests[0]?.cookie)
  t.match(other.requests[0], { method: 'GET', prefer: /respond-async/ })

  // An abort while waiting there cancels nothing there (and nothing on the first origin: the job is not its).
  const stuck = await pointingAt(t, () => `${other.origin}/async-response/j`)
  const controller = new AbortController()
  const before = other.requests.length
  const call = fetchLongRunning(`${stuck.url}/start`, { headers: { authorization: 'Bearer secret' } }, {
    allowedOrigins: [other.origin],
    onProgress: () => { controller.abort() },
    signal: controller.signal
  })
  await t.rejects(call, { name: 'AbortError' })
  t.same(other.requests.slice(before), [], 'no DELETE (nor anything) across origins')
  t.same(stuck.seen.map(request => request.method), ['GET'], 'and none on the first origin, where the job is not')
})

t.test('only http(s) job URLs: a data: URL never resolves the call', async t => {
  const { url } = await pointingAt(t, () => 'data:text/plain,forged')
  await t.rejects(fetchLongRunning(`${url}/start`), { name: 'TypeError', message: /not http/ })
  const script = await pointingAt(t, () => 'javascript:alert(1)')
  await t.rejects(fetchLongRunning(`${script.url}/start`), { name: 'TypeError', message: /not http/ })
})

t.test('Retry-After is read strictly: 0, a past date, -5 and 1.5 never make status requests closer than a second', async t => {
  const answer = (value: string): Response => new Response(null, { headers: { 'retry-after': value } })
  t.equal(retryAfterMs(answer('3'), 7), 3000)
  t.equal(retryAfterMs(answer('0'), 7), 0, 'the caller floors it')
  t.equal(retryAfterMs(answer('-5'), 7), 7, 'not delay-seconds: the fallback')
  t.equal(retryAfterMs(answer('1.5'), 7), 7)
  t.equal(retryAfterMs(answer('soon'), 7), 7)
  t.equal(retryAfterMs(answer('Thu, 01 Jan 1970 00:00:00 GMT'), 7), 0, 'a past date')
  t.equal(retryAfterMs(answer(new Date(Date.now() + 3_600_000).toUTCString()), 7), 60_000, 'at most a minute')
  t.equal(retryAfterMs(new Response(null), 7), 7)

  for (const value of ['0', '-5', '1.5', 'Thu, 01 Jan 1970 00:00:00 GMT']) {
    let answers = 0
    const app = Fastify()
    app.get('/start', async (_request, reply) => {
      if (++answers === 4) return 'done'
      return await reply.code(202).header('preference-applied', 'respond-async').header('retry-after', value)
        .send({ id: 'j', status: 'running', location: '/start' })
    })
    const url = await listen(t, app)
    // When the client sends each request: the floor is between its sends.
    const sent: number[] = []
    const recording = async (request: Request): Promise<Response> => { sent.push(Date.now()); return await fetch(request) }
    t.equal(await (await fetchLongRunning(`${url}/start`, {}, { fetch: recording })).text(), 'done', `Retry-After: ${value}`)
    const gaps = sent.slice(1).map((time, i) => time - (sent[i] as number))
    // A floor the client keeps between its calls to fetch, not a speed: no gap under its one
    // second (a timer may fire a clock tick early), where a hot loop's are a millisecond.
    t.ok(gaps.length === 3 && gaps.every(gap => gap >= 990), `gaps ${gaps.join(', ')} ms`)
  }
})

t.test('status requests leave no listener on the caller\'s signal', async t => {
  const test = await buildTestApp({ waitSeconds: 0 })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const controller = new AbortController()
  const counts: number[] = []
  const call = fetchLongRunning(`${url}/job/listeners`, {}, {
    signal: controller.signal,
    waitSeconds: 0,
    onProgress: () => {
      counts.push(getEventListeners(controller.signal, 'abort').length)
      if (counts.length === 4) test.gates.open('listeners')
    }
  })
  t.equal((await call).status, 201)
  t.ok(counts.length >= 4)
  t.equal(new Set(counts).size, 1, `the same number at every status: ${counts.join(', ')}`)
})

t.test('an HTTP date without a zone (asctime) is read as GMT, whatever the local time zone', async t => {
  const zone = process.env.TZ
  t.teardown(() => { if (zone === undefined) delete process.env.TZ; else process.env.TZ = zone })
  process.env.TZ = 'Asia/Tokyo'
  // "Fri, 04 Dec 2026 01:22:35 GMT" as asctime: "Fri Dec  4 01:22:35 2026".
  const [weekday, day, month, year, time] = new Date(Date.now() + 10_000).toUTCString().replace(',', '').split(' ') as [string, string, string, string, string]
  const asctime = `${weekday} ${month} ${String(Number(day)).padStart(2, ' ')} ${time} ${year}`
  const ms = retryAfterMs(new Response(null, { headers: { 'retry-after': asctime } }), 7)
  t.ok(ms > 8_000 && ms <= 10_000, `${asctime}: ${ms} ms`)
})

t.test('retries of a status request keep the second between requests, after a 503 with Retry-After: 0 too', async t => {
  let answers = 0
  const app = Fastify()
  app.get('/start', async (_request, reply) => {
    answers++
    if (answers === 1) return await reply.code(202).header('preference-applied', 'respond-async').send({ id: 'j', status: 'running', location: '/start' })
    if (answers <= 3) return await reply.code(503).header('retry-after', '0').send('busy')
    return 'done'
  })
  const url = await listen(t, app)
  const sent: number[] = []
  const recording = async (request: Request): Promise<Response> => { sent.push(Date.now()); return await fetch(request) }
  t.equal(await (await fetchLongRunning(`${url}/start`, {}, { fetch: recording })).text(), 'done')
  const gaps = sent.slice(1).map((time, i) => time - (sent[i] as number))
  t.ok(gaps.length === 3 && gaps.every(gap => gap >= 990), `gaps ${gaps.join(', ')} ms`)
})

t.test('a first request is sent again only with a key the server honours: never a GET, whatever its headers', async t => {
  let runs = 0
  const app = Fastify()
  app.get('/report', async () => { runs++; return 'ran' })
  const url = await listen(t, app)
  // A front end that passes the request on, then answers 502 itself (the answer lost on the way back).
  const lossy = async (request: Request): Promise<Response> => {
    await (await fetch(request)).arrayBuffer()
    return new Response('{"message":"Internal server error"}', { status: 502 })
  }
  const response = await fetchLongRunning(`${url}/report`, { headers: { 'idempotency-key': '"k"' } }, { fetch: lossy })
  t.equal(response.status, 502, 'the front end\'s answer')
  t.equal(runs, 1, 'not sent again: a GET\'s key is ignored by the server')
})
