import { request as httpRequest } from 'node:http'
import t from 'tap'
import { buildApp } from '../../example/app.js'
import { memoryQueue, memoryStore, type JobStore } from '../../src/index.js'
import { buildTestApp, closeTestApp } from '../helpers/app.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { pollUntil } from '../helpers/poll.js'
import { randomBody } from '../helpers/random.js'

// The embedded default with bounded memory (issue 16), over real HTTP: counts, never timings.
// Peak RSS under the same load is measured in bench/ (`npm run bench`, bench/bounded.ts).
const MiB = 1024 * 1024

t.test('32 MiB budget, 160 × 1 MiB POST /echo at once: 503 + Retry-After beyond it; every accepted job\'s result is its bytes, or 410 when it gave way unread', async t => {
  const app = await buildApp({ waitSeconds: 25, store: memoryStore({ maxBytes: 32 * MiB }) })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  // Five times what the budget holds, at once.
  const bodies = Array.from({ length: 160 }, () => randomBody(MiB))
  // respond-async: results are not fetched while the burst lasts, as in the measure.
  const answers = await Promise.all(bodies.map(async body => {
    const response = await fetch(`${url}/echo?delay=0`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream', prefer: 'respond-async' } })
    return { status: response.status, retryAfter: response.headers.get('retry-after'), location: response.headers.get('location'), body: await response.json() as { code?: string }, sent: body }
  }))
  const accepted = answers.filter(answer => answer.status === 202)
  const refused = answers.filter(answer => answer.status === 503)
  t.equal(accepted.length + refused.length, 160, 'every request got 202 or 503')
  t.ok(refused.every(answer => answer.retryAfter === '1' && answer.body.code === 'FST_LONG_RUNNING_ENQUEUE_FAILED'), 'refused: 503 ENQUEUE_FAILED, Retry-After: 1')
  const stats = app.longRunning.stats()
  t.ok((stats.storedBytes ?? Infinity) <= 32 * MiB, `stored ${stats.storedBytes ?? 'n/a'} bytes`)
  t.ok((stats.storedJobs ?? Infinity) <= accepted.length)

  // Results nobody read gave way to later jobs beyond half the budget; the others are exact.
  let exact = 0
  let evicted = 0
  for (const answer of accepted) {
    const result = await fetch(url + (answer.location ?? ''))
    const bytes = Buffer.from(await result.arrayBuffer())
    if (result.status === 201 && bytes.equals(answer.sent)) exact++
    // A 410 for a result that gave way, or a 404 once that 410 went too, to make room again.
    else if ([410, 404].includes(result.status) && ['FST_LONG_RUNNING_RESULT_EVICTED', 'FST_LONG_RUNNING_NOT_FOUND'].includes(JSON.parse(bytes.toString()).code)) evicted++
  }
  t.equal(exact + evicted, accepted.length, `${exact} exact, ${evicted} gave way: nothing else`)
  t.ok(exact >= 15, 'half the budget of results kept')
  t.equal(evicted, app.longRunning.stats().unreadEvictions)

  // Now delivered, the results make room for new jobs, oldest delivery first.
  // (The burst may have left room: new ones come until one needs an eviction.)
  for (let sent = 0; (app.longRunning.stats().evictions ?? 0) === 0 && sent < 40; sent++) {
    const body = randomBody(MiB)
    const next = await fetch(`${url}/echo?delay=0`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } })
    t.equal(next.status, 201)
    t.ok(Buffer.from(await next.arrayBuffer()).equals(body))
  }
  t.ok((app.longRunning.stats().evictions ?? 0) > 0)
  const oldest = await fetch(url + (accepted[0]?.location ?? ''))
  t.equal(oldest.status, 404, 'an evicted result answers like an expired one')
  t.match(await oldest.json(), { code: 'FST_LONG_RUNNING_NOT_FOUND' })
})

t.test('a body the budget cannot take is refused before it is read', async t => {
  const test = await buildTestApp({ store: memoryStore({ maxBytes: MiB }) })
  t.teardown(() => closeTestApp(test))
  const url = new URL(await test.listen())
  // 100 MiB announced, 10 bytes sent: the answer comes without the rest.
  const answer = await new Promise<{ status: number, retryAfter: string | undefined, connection: string | undefined }>((resolve, reject) => {
    const request = httpRequest({ host: url.hostname, port: url.port, path: '/job/big', method: 'POST', headers: { 'content-type': 'text/plain', 'content-length': String(100 * MiB) } }, response => {
      response.resume()
      resolve({ status: response.statusCode ?? 0, retryAfter: response.headers['retry-after'] as string | undefined, connection: response.headers.connection })
      request.destroy()
    })
    request.on('error', reject)
    request.write('0123456789')
  })
  t.same(answer, { status: 503, retryAfter: '1', connection: 'keep-alive' }, 'answered before the rest was sent')
  t.equal(test.runs.get('big'), undefined, 'no job')
  t.equal(test.app.longRunning.stats().storedJobs, 0)
})

t.test('maxQueued: jobs beyond it get 503 at once; stats show queued and running', async t => {
  const test = await buildTestApp({ concurrency: 1, consume: true, queue: memoryQueue({ maxQueued: 2 }) })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const prefer = { prefer: 'respond-async' }
  t.equal((await fetch(`${url}/job/q1`, { headers: prefer })).status, 202)
  await test.ran('q1')
  for (const name of ['q2', 'q3']) t.equal((await fetch(`${url}/job/${name}`, { headers: prefer })).status, 202)
  const full = await fetch(`${url}/job/q4`, { headers: prefer })
  t.equal(full.status, 503)
  t.equal(full.headers.get('retry-after'), '1')
  t.match(await full.json(), { code: 'FST_LONG_RUNNING_ENQUEUE_FAILED' })
  t.match(test.app.longRunning.stats(), { queued: 2, running: 1, storedJobs: 3 })
  for (const name of ['q1', 'q2', 'q3']) test.gates.open(name)
})

t.test('results past their TTL leave memory without being read (stats show it)', async t => {
  const clock = new FakeClock()
  const test = await buildTestApp({ clock, resultTtlSeconds: 60 })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const accepted = await fetch(`${url}/job/ttl?open=1`, { method: 'POST', body: 'x'.repeat(10_000), headers: { 'content-type': 'text/plain', prefer: 'respond-async' } })
  t.equal(accepted.status, 202)
  const location = accepted.headers.get('location') ?? ''
  await pollUntil(async () => await fetch(url + location, { headers: { prefer: 'respond-async' } }), response => response.status === 201)
  t.match(test.app.longRunning.stats(), { storedJobs: 1, expired: 0 })
  t.ok((test.app.longRunning.stats().storedBytes ?? 0) > 10_000)
  await clock.advance(61_000 + 60_000)
  t.match(test.app.longRunning.stats(), { storedJobs: 0, storedBytes: 0, expired: 1 }, 'gone, unread since')
})

t.test('stats on other backends: only what the process knows', async t => {
  // A store that keeps nothing in this process's memory (as DynamoDB): the memory store, without its budget.
  const plain = memoryStore()
  const methods = ['create', 'reserveKey', 'get', 'claim', 'renew', 'setProgress', 'complete', 'cancel', 'delete', 'watch', 'close'] as const
  const store = Object.fromEntries(methods.map(name => [name, (plain[name] as (...args: unknown[]) => unknown).bind(plain)])) as unknown as JobStore
  const test = await buildTestApp({ store })
  t.teardown(() => closeTestApp(test))
  t.same(test.app.longRunning.stats(), { queued: 0, running: 0 })
})
