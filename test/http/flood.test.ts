import { request as httpRequest, Agent } from 'node:http'
import t from 'tap'
import { memoryQueue, memoryStore } from '../../src/index.js'
import { buildTestApp, closeTestApp } from '../helpers/app.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { slowUpload } from '../helpers/flood.js'

// One caller against the embedded default's shared budget (issue 26, point 6), over real HTTP:
// slow uploads, results nobody reads, queued requests and refused keys each have a bound.
// Counts and statuses only; the floods against `npm start` are measured in bench/flood.ts.
const KiB = 1024
const MiB = 1024 * KiB

t.test('a body that does not arrive within bodyTimeoutSeconds: 408 BODY_TIMEOUT, the connection closed, nothing queued', async t => {
  const clock = new FakeClock()
  const test = await buildTestApp({ clock, bodyTimeoutSeconds: 5 })
  t.teardown(() => closeTestApp(test))
  await test.listen()
  const before = clock.pending
  const upload = slowUpload(Number(new URL(test.url).port), '/job/slow?open=1', 1000, 1)
  await clock.armed(before + 1)
  await clock.advance(4999)
  t.equal(upload.received(), '', 'not before its time')
  await clock.advance(1)
  await upload.closed
  t.match(upload.received(), /^HTTP\/1\.1 408 /)
  t.match(upload.received(), /\r\nconnection: close\r\n/i)
  t.match(upload.received(), /"code":"FST_LONG_RUNNING_BODY_TIMEOUT"/)
  t.equal(test.runs.get('slow'), undefined)
  t.match(test.app.longRunning.stats(), { storedJobs: 0 })
  // A body that arrives in time is not cut afterwards: its timer is gone.
  const fine = await fetch(`${test.url}/job/fine?open=1`, { method: 'POST', body: 'ok', headers: { 'content-type': 'text/plain', prefer: 'respond-async' } })
  t.equal(fine.status, 202)
  t.equal(clock.pending, before, 'no deadline left armed')
})

t.test('slow uploads that announce much hold only what they sent: a new client still gets its answer', async t => {
  const seen: string[] = []
  const test = await buildTestApp({ store: memoryStore({ maxBytes: 64 * KiB }) }, app => {
    app.addHook('preParsing', async (request, _reply, payload) => {
      seen.push(request.url)
      return payload
    })
  })
  t.teardown(() => closeTestApp(test))
  await test.listen()
  const port = Number(new URL(test.url).port)
  // Each announces 30 KiB (counted twice while it arrives, it alone would fit), and sends 100 bytes.
  const uploads = Array.from({ length: 10 }, (_, i) => slowUpload(port, `/job/slow${i}?open=1`, 30 * KiB, 100))
  t.teardown(() => { for (const upload of uploads) upload.socket.destroy() })
  while (seen.length < 10) await new Promise(resolve => setImmediate(resolve))
  const body = 'y'.repeat(10 * KiB)
  const answer = await fetch(`${test.url}/job/new?open=1`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } })
  t.equal(answer.status, 201)
  t.equal(await answer.text(), body)
  t.same(uploads.map(upload => upload.received()), Array(10).fill(''), 'the slow uploads were not refused either: they hold what they sent')
})

t.test('a chunked body that outgrows the budget is refused as it arrives: 503 with Retry-After, the connection stays usable', async t => {
  const test = await buildTestApp({ store: memoryStore({ maxBytes: 64 * KiB }) })
  t.teardown(() => closeTestApp(test))
  const url = new URL(await test.listen())
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const send = async (path: string, chunks: number): Promise<{ status: number, retryAfter: string | undefined, body: string }> => await new Promise((resolve, reject) => {
    const request = httpRequest({ host: url.hostname, port: url.port, path, method: 'POST', agent, headers: { 'content-type': 'application/octet-stream' } }, response => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { body += chunk })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, retryAfter: response.headers['retry-after'] as string | undefined, body }))
    })
    request.on('error', reject)
    for (let i = 0; i < chunks; i++) request.write(Buffer.alloc(4 * KiB, 'z'))
    request.end()
  })
  const refused = await send('/job/large?open=1', 25)
  t.equal(refused.status, 503)
  t.equal(refused.retryAfter, '1')
  t.match(JSON.parse(refused.body), { code: 'FST_LONG_RUNNING_ENQUEUE_FAILED' })
  const small = await send('/job/small?open=1', 2)
  t.equal(small.status, 201, 'the same connection serves the next request')
  t.equal(small.body.length, 8 * KiB)
  t.equal(test.runs.get('large'), undefined)
})

t.test('results nobody reads hold half the budget: the oldest answer 410 RESULT_EVICTED; new clients get theirs', async t => {
  let ended = 0
  let allEnded: () => void = () => {}
  const twelve = new Promise<void>(resolve => { allEnded = resolve })
  const test = await buildTestApp({
    store: memoryStore({ maxBytes: 8 * MiB }),
    onJobEnd: () => { if (++ended === 12) allEnded() }
  }, app => {
    app.get<{ Querystring: { n: string } }>('/big', { longRunning: true }, async (request, reply) => await reply.type('application/octet-stream').send(Buffer.alloc(MiB, Number(request.query.n))))
  })
  t.teardown(() => closeTestApp(test))
  await test.listen()
  const locations: string[] = []
  for (let n = 0; n < 12; n++) {
    const accepted = await fetch(`${test.url}/big?n=${n}`, { headers: { prefer: 'respond-async' } })
    t.equal(accepted.status, 202)
    locations.push(accepted.headers.get('location') ?? '')
  }
  await twelve
  const evicted = test.app.longRunning.stats().unreadEvictions ?? 0
  t.ok(evicted >= 4, `${evicted} unread results gave way to keep 12 MiB of them within 8`)
  // Fetched now, in any order: each is its exact bytes, or the 410 of a result that gave way
  // (or the 404 of that 410, itself gone to make room).
  const answers = await Promise.all(locations.map(async (location, n) => {
    const response = await fetch(test.url + location)
    const body = Buffer.from(await response.arrayBuffer())
    if (response.status === 200) return body.equals(Buffer.alloc(MiB, n)) ? 'exact' : 'wrong'
    const { code } = JSON.parse(body.toString())
    return (response.status === 410 && code === 'FST_LONG_RUNNING_RESULT_EVICTED') || (response.status === 404 && code === 'FST_LONG_RUNNING_NOT_FOUND') ? 'evicted' : 'wrong'
  }))
  t.ok(answers.includes('evicted') && JSON.stringify(answers).includes('exact'))
  t.equal(answers.filter(answer => answer === 'evicted').length, evicted)
  t.equal(answers.filter(answer => answer === 'exact').length, 12 - evicted)
  const fresh = await fetch(`${test.url}/big?n=99`)
  t.equal(fresh.status, 200, 'a new client, waiting for its result, gets it')
  t.ok(Buffer.from(await fresh.arrayBuffer()).equals(Buffer.alloc(MiB, 99)))
})

t.test('queued requests count against the budget: a backlog of uploads is bounded by it, not by the heap', async t => {
  const test = await buildTestApp({ concurrency: 1, consume: true, store: memoryStore({ maxBytes: 2 * MiB }) })
  t.teardown(() => closeTestApp(test))
  await test.listen()
  t.equal((await fetch(`${test.url}/job/blocker`, { headers: { prefer: 'respond-async' } })).status, 202)
  await test.ran('blocker')
  const statuses: number[] = []
  for (let i = 0; i < 40; i++) {
    const response = await fetch(`${test.url}/job/queued?open=1`, { method: 'POST', body: Buffer.alloc(100 * KiB), headers: { 'content-type': 'application/octet-stream', prefer: 'respond-async' } })
    statuses.push(response.status)
    await response.arrayBuffer()
  }
  const accepted = statuses.filter(status => status === 202).length
  t.ok(accepted >= 10 && accepted < 20, `${accepted} of 40 queued: what 2 MiB holds`)
  t.ok(statuses.slice(accepted).every(status => status === 503), 'then 503')
  const stats = test.app.longRunning.stats()
  t.ok((stats.storedBytes ?? 0) >= accepted * 100 * KiB, 'the queued bodies are counted')
  t.equal(stats.queued, accepted)
})

t.test('a key whose job was never queued is released: the next request with it is a new one, not 422', async t => {
  const test = await buildTestApp({ concurrency: 1, consume: true, queue: memoryQueue({ maxQueued: 1 }) })
  t.teardown(() => closeTestApp(test))
  await test.listen()
  const post = async (name: string, key: string, body: string): Promise<Response> => await fetch(`${test.url}/job/${name}`, { method: 'POST', body, headers: { 'content-type': 'text/plain', 'idempotency-key': key, prefer: 'respond-async' } })
  t.equal((await post('running', 'k0', 'a')).status, 202)
  await test.ran('running')
  t.equal((await post('waiting', 'k1', 'b')).status, 202)
  const full = await post('refused', 'k2', 'first body')
  t.equal(full.status, 503, 'the queue is full: refused')
  test.gates.open('running')
  test.gates.open('waiting')
  await test.ran('waiting')
  const again = await post('refused?open=1', 'k2', 'another body')
  t.equal(again.status, 202, 'the key was free again')
})

t.test('a body Fastify refuses midway (413, 415) stops counting once answered: the budget is whole again', async t => {
  const test = await buildTestApp({ store: memoryStore({ maxBytes: MiB }) }, app => {
    app.register(async strict => {
      strict.removeAllContentTypeParsers()
      strict.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: 64 * KiB }, (_request, body, done) => done(null, body))
      strict.post('/strict', { longRunning: true, bodyLimit: 64 * KiB }, async () => 'ran')
    })
  })
  t.teardown(() => closeTestApp(test))
  const url = new URL(await test.listen())
  const chunked = async (path: string, type: string, bytes: number): Promise<number> => await new Promise((resolve, reject) => {
    const request = httpRequest({ host: url.hostname, port: url.port, path, method: 'POST', headers: { 'content-type': type } }, response => {
      response.resume()
      resolve(response.statusCode ?? 0)
    })
    request.on('error', reject)
    for (let sent = 0; sent < bytes; sent += 16 * KiB) request.write(Buffer.alloc(16 * KiB))
    request.end()
  })
  for (let i = 0; i < 10; i++) {
    t.equal(await chunked('/strict', 'application/json', 256 * KiB), 413)
    t.equal(await chunked('/strict', 'text/xml', 256 * KiB), 415)
  }
  // 400 KiB counted twice: it fits only if nothing of the refused bodies is still counted.
  const fits = await fetch(`${test.url}/strict`, { method: 'POST', body: Buffer.alloc(60 * KiB), headers: { 'content-type': 'application/json' } })
  t.equal(fits.status, 200)
  const large = await fetch(`${test.url}/job/large?open=1`, { method: 'POST', body: Buffer.alloc(400 * KiB), headers: { 'content-type': 'application/octet-stream', prefer: 'respond-async' } })
  t.equal(large.status, 202, 'the budget is whole again')
})

t.test('a client refused before its body is read, still sending slowly, is cut at the deadline', async t => {
  const clock = new FakeClock()
  const test = await buildTestApp({ clock, bodyTimeoutSeconds: 5, store: memoryStore({ maxBytes: MiB, clock }) })
  t.teardown(() => closeTestApp(test))
  await test.listen()
  const upload = slowUpload(Number(new URL(test.url).port), '/job/big?open=1', 100 * MiB, 10)
  while (!upload.received().includes('\r\n\r\n')) await new Promise(resolve => setImmediate(resolve))
  t.match(upload.received(), /^HTTP\/1\.1 503 /)
  t.equal(upload.socket.destroyed, false, 'kept alive: a client still sending gets its answer')
  await clock.advance(5000)
  await upload.closed
  t.pass('cut at the deadline')
})
