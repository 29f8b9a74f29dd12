import { once } from 'node:events'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import t, { type Test } from 'tap'
import { errors, memoryStore, type LongRunningOptions, type JobStore } from '../../src/index.js'
import { buildTestApp, closeTestApp, type TestApp } from '../helpers/app.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { Gate } from '../helpers/gate.js'
import { delivery, RecordingQueue } from '../helpers/recording-queue.js'
import { spyStore } from '../helpers/spy-store.js'
import { downMemoryQueue } from '../helpers/down-queue.js'

// Idempotency-Key on the embedded default, over real HTTP: a retried request attaches to the
// job its key started, or gets its stored answer again; the handler runs once per key.

async function setup (t: Test, options: LongRunningOptions = {}, routes?: Parameters<typeof buildTestApp>[1]): Promise<TestApp> {
  const test = await buildTestApp({ waitSeconds: 5, ...options }, routes)
  t.teardown(() => closeTestApp(test))
  await test.listen()
  return test
}

interface Sent { status: number, headers: Headers, body: Buffer }

/** POST `path` with a key (or `null`: none) and a body, following redirects as browsers do. */
async function post (test: TestApp, path: string, key: string | null, body: string, headers: Record<string, string> = {}): Promise<Sent> {
  const response = await fetch(`${test.url}${path}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'text/plain', ...(key === null ? {} : { 'idempotency-key': key }), ...headers },
    redirect: headers.prefer === undefined ? 'follow' : 'manual'
  })
  return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) }
}

const jobIdOf = (sent: Sent): string | undefined => /async-response\/([^?]+)/.exec(sent.headers.get('location') ?? '')?.[1]

t.test('one key, two concurrent requests: one run, the same answer; later the stored one again; another body gets 422', async t => {
  let reserved = 0
  const seen = new Gate()
  const memory = memoryStore()
  const store: JobStore = spyStore(memory, {
    reserveKey: async (reservation) => {
      const holder = await memory.reserveKey(reservation)
      if (++reserved === 2) seen.open()
      return holder
    }
  })
  const test = await setup(t, { store })
  const first = post(test, '/job/pay', '"order-42"', 'amount=10')
  await test.ran('pay')
  const second = post(test, '/job/pay', 'order-42', 'amount=10') // the bare token is the same key
  await seen.opened
  test.gates.open('pay')
  const [a, b] = await Promise.all([first, second])
  t.equal(a.status, 201)
  t.equal(b.status, 201)
  t.ok(a.body.equals(b.body) && a.body.toString() === 'amount=10', 'the same bytes')
  t.equal(a.headers.get('x-job-id'), b.headers.get('x-job-id'), 'the same job')
  t.equal(a.headers.get('idempotent-replayed'), null, 'the first is no replay')
  t.equal(test.runs.get('pay'), 1, 'the handler ran once')

  const third = await post(test, '/job/pay', '"order-42"', 'amount=10')
  t.equal(third.status, 201)
  t.ok(third.body.equals(a.body))
  t.equal(third.headers.get('idempotent-replayed'), 'true')
  t.same(third.headers.getSetCookie(), a.headers.getSetCookie(), 'every header of the stored answer')

  for (const [label, path, body, headers] of [
    ['another body', '/job/pay', 'amount=99', {}],
    ['another query', '/job/pay?x=1', 'amount=10', {}],
    ['another content type', '/job/pay', 'amount=10', { 'content-type': 'application/x-www-form-urlencoded' }]
  ] as const) {
    const reused = await post(test, path, '"order-42"', body, headers)
    t.equal(reused.status, 422, label)
    t.equal(reused.headers.get('content-type'), 'application/json; charset=utf-8')
    t.same(JSON.parse(reused.body.toString()), { statusCode: 422, code: 'FST_LONG_RUNNING_IDEMPOTENCY_KEY_REUSED', error: 'Unprocessable Entity', message: 'This idempotency key was used with another request' })
  }
  const fresh = await post(test, '/job/pay', '"order-43"', 'amount=10', {})
  t.equal(fresh.status, 201)
  t.equal(test.runs.get('pay'), 2, 'a new key runs the handler again')
  const elsewhere = await post(test, '/job/refund?open=1', '"order-42"', 'amount=10')
  t.equal(elsewhere.status, 201, 'the key of another route is another key')
})

t.test('attaching: 303 and 202 to the same job, 409 in strict mode; stored errors come back too', async t => {
  const test = await setup(t, {}, (app, gates, count) => {
    app.post('/strict', { longRunning: { idempotency: { strict: true } } }, async () => {
      count('strict')
      await gates.get('strict').opened
      return { strict: true }
    })
  })
  const first = await post(test, '/job/slow', 'k1', 'x', { prefer: 'respond-async' })
  t.equal(first.status, 202)
  const again = await post(test, '/job/slow', 'k1', 'x', { prefer: 'respond-async' })
  t.equal(again.status, 202)
  t.equal(again.headers.get('idempotent-replayed'), 'true')
  t.equal(jobIdOf(again), jobIdOf(first), 'the same job')
  const waited = await post(test, '/job/slow', 'k1', 'x', { prefer: 'wait=0' })
  t.equal(waited.status, 303)
  t.equal(jobIdOf(waited), jobIdOf(first))

  const original = await post(test, '/strict', 'k2', '', { prefer: 'respond-async' })
  const conflict = await post(test, '/strict', 'k2', '', { prefer: 'respond-async' })
  t.equal(conflict.status, 409)
  t.match(JSON.parse(conflict.body.toString()), { code: 'FST_LONG_RUNNING_IDEMPOTENCY_CONFLICT', statusCode: 409 })
  t.equal(jobIdOf(conflict), jobIdOf(original), 'Location: the job it conflicts with')
  test.gates.open('strict')
  const done = await fetch(`${test.url}${conflict.headers.get('location') ?? ''}`)
  t.same(await done.json(), { strict: true })
  const replayed = await post(test, '/strict', 'k2', '')
  t.equal(replayed.status, 200, 'once done, strict mode replays too')
  t.equal(test.runs.get('strict'), 1)

  test.gates.open('slow')
  t.equal((await post(test, '/job/slow', 'k1', 'x')).status, 201)
  t.equal(test.runs.get('slow'), 1)
})

t.test('a job that ended with the plugin\'s 504 gives its key the same 504', async t => {
  const clock = new FakeClock()
  const test = await setup(t, { clock, timeoutSeconds: 2 })
  const first = await post(test, '/job/stuck', 'k', 'x', { prefer: 'respond-async' })
  await test.ran('stuck')
  await clock.armed(2)
  await clock.advance(2000)
  const ended = await fetch(`${test.url}${first.headers.get('location') ?? ''}`)
  t.equal(ended.status, 504)
  const retried = await post(test, '/job/stuck', 'k', 'x')
  t.equal(retried.status, 504)
  t.equal(retried.body.toString(), await ended.text(), 'byte for byte')
  t.equal(test.runs.get('stuck'), 1)
})

t.test('keys are scoped to the caller (bindTo): two users with one key run twice and read only their own', async t => {
  const test = await setup(t, { bindTo: request => request.headers['x-user'] as string | undefined })
  const alice = await post(test, '/job/scoped?open=1', 'same', 'alice', { 'x-user': 'alice' })
  const bob = await post(test, '/job/scoped?open=1', 'same', 'bob', { 'x-user': 'bob' })
  t.equal(alice.body.toString(), 'alice')
  t.equal(bob.body.toString(), 'bob', 'no 422: another caller, another key')
  t.equal(test.runs.get('scoped'), 2)
  const replay = await post(test, '/job/scoped?open=1', 'same', 'alice', { 'x-user': 'alice' })
  t.equal(replay.body.toString(), 'alice')
  t.equal(test.runs.get('scoped'), 2)
})

t.test('DELETE takes keys too, with or without a body; a route may turn keys on that the plugin turned off', async t => {
  const test = await setup(t, { idempotency: false }, (app, _gates, count) => {
    app.delete('/things/:id', { longRunning: true }, async () => { count('delete'); return { deleted: true } })
    app.post('/on', { longRunning: { idempotency: { required: true } } }, async () => { count('on'); return 'on' })
    app.post('/off', { longRunning: true }, async () => { count('off'); return 'off' })
  })
  for (let i = 0; i < 2; i++) {
    await fetch(`${test.url}/things/1`, { method: 'DELETE', headers: { 'idempotency-key': 'd' } })
    await post(test, '/off', 'o', '')
  }
  t.equal(test.runs.get('delete'), 2, 'the plugin\'s keys are off')
  t.equal(test.runs.get('off'), 2)
  t.equal((await post(test, '/on', null, '')).status, 400, 'the route\'s own settings, over the defaults')
  t.equal((await post(test, '/on', 'k', '')).status, 200)
  t.equal((await post(test, '/on', 'k', '')).headers.get('idempotent-replayed'), 'true')
  t.equal(test.runs.get('on'), 1)

  const keyed = await setup(t, {}, (app, _gates, count) => {
    app.delete('/things/:id', { longRunning: true }, async () => { count('delete'); return { deleted: true } })
  })
  const answers = []
  for (let i = 0; i < 2; i++) {
    const response = await fetch(`${keyed.url}/things/1`, { method: 'DELETE', headers: { 'idempotency-key': 'd' } })
    answers.push([response.status, await response.text()])
  }
  t.same(answers, [[200, '{"deleted":true}'], [200, '{"deleted":true}']])
  t.equal(keyed.runs.get('delete'), 1, 'a DELETE without a body or a content type has a fingerprint too')
})

t.test('where keys do not apply: GET, idempotency: false; where they must: required', async t => {
  const test = await setup(t, { idempotency: { header: 'x-key' } }, (app, _gates, count) => {
    app.post('/off', { longRunning: { idempotency: false } }, async () => { count('off'); return 'off' })
    app.post('/must', { longRunning: { idempotency: { required: true } } }, async () => { count('must'); return 'must' })
  })
  for (let i = 0; i < 2; i++) {
    await fetch(`${test.url}/job/read?open=1`, { headers: { 'x-key': 'k' } })
    await post(test, '/off', null, '', { 'x-key': 'k' })
    await post(test, '/job/other?open=1', null, '', { 'idempotency-key': 'k' })
  }
  t.equal(test.runs.get('read'), 2, 'GET is idempotent by itself: the key is ignored')
  t.equal(test.runs.get('off'), 2, 'idempotency: false')
  t.equal(test.runs.get('other'), 2, 'the plugin was told another header')
  const missing = await post(test, '/must', null, '')
  t.equal(missing.status, 400)
  t.match(JSON.parse(missing.body.toString()), { code: 'FST_LONG_RUNNING_IDEMPOTENCY_KEY_MISSING', message: 'This operation requires an `x-key` header' })
  t.equal((await post(test, '/must', null, '', { 'x-key': 'k' })).status, 200)
  t.equal(test.runs.get('must'), 1)
})

t.test('Structured Field strings and bare tokens; anything else is a 400 that runs nothing', async t => {
  const test = await setup(t)
  const valid = [['"a b"', 'q1'], ['"a\\"b\\\\c"', 'q2'], ['"' + 'k'.repeat(255) + '"', 'q3'], ['k'.repeat(255), 'q4'], ['~!#$%&*+-.^_`|', 'q5'], ['"~"', 'q6']]
  for (const [key, name] of valid) {
    t.equal((await post(test, `/job/${name}?open=1`, key as string, '')).status, 201, String(key))
  }
  t.equal((await post(test, '/job/q1?open=1', '"a b"', '')).headers.get('idempotent-replayed'), 'true', 'the quoted key is unescaped, then the same')
  for (const key of ['""', '"abc', 'abc"', 'a b', 'a, b', '"a", "b"', '"a";p=1', '"\\x"', 'k'.repeat(256), '"' + 'k'.repeat(256) + '"', 'a\\b', '"\u00e9"']) {
    const refused = await rawPost(test, '/job/never?open=1', key)
    t.equal(refused.status, 400, JSON.stringify(key))
    t.match(JSON.parse(refused.body), { code: 'FST_LONG_RUNNING_IDEMPOTENCY_KEY_INVALID' })
  }
  t.equal(test.runs.get('never'), undefined)
})

t.test('a malformed or missing key is answered before the body is read: the upload need not finish', async t => {
  let parsed = 0
  const test = await setup(t, {}, app => {
    app.addContentTypeParser('application/x-upload', { parseAs: 'buffer' }, (_request, body, done) => { parsed++; done(null, body) })
    app.post('/upload', { longRunning: { idempotency: { required: true } } }, async () => 'ran')
  })
  for (const key of ['"a", "b"', undefined]) {
    const request = httpRequest(`${test.url}/upload`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-upload', 'content-length': String(64 * 1024 * 1024), ...(key === undefined ? {} : { 'idempotency-key': key }) }
    })
    request.on('error', () => {})
    const answered = once(request, 'response')
    // A first part of a 64 MiB upload, and no more: the answer must come without the rest.
    request.write(Buffer.alloc(64 * 1024))
    const [response] = await answered as [IncomingMessage]
    const body = Buffer.concat(await response.toArray()).toString()
    request.destroy()
    t.equal(response.statusCode, 400, String(key))
    t.match(JSON.parse(body), { code: key === undefined ? 'FST_LONG_RUNNING_IDEMPOTENCY_KEY_MISSING' : 'FST_LONG_RUNNING_IDEMPOTENCY_KEY_INVALID' })
    t.notOk(request.writableFinished, 'the client never finished sending')
  }
  t.equal(parsed, 0, 'the body parser never ran')
})

t.test('fuzzed keys get 201, 400 or 422, never a 5xx', async t => {
  const test = await setup(t)
  // A seeded generator: the same keys at every run.
  let seed = 7
  const next = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed }
  const alphabet = ['"', '\\', ',', ';', '=', ' ', '\t', 'a', 'Z', '0', '-', '~', '\u0080', '\u00ff', '(', ')', ':']
  const statuses = new Map<number, number>()
  for (let i = 0; i < 300; i++) {
    const length = next() % 3 === 0 ? 250 + (next() % 10) : next() % 12
    let key = Array.from({ length }, () => alphabet[next() % alphabet.length]).join('')
    if (next() % 4 === 0) key = `"${key}"`
    const sent = await rawPost(test, `/job/fuzz?open=1&n=${i % 5}`, key, `body ${i % 3}`)
    statuses.set(sent.status, (statuses.get(sent.status) ?? 0) + 1)
  }
  t.ok([...statuses.keys()].every(status => [201, 400, 422].includes(status)), JSON.stringify([...statuses]))
  t.ok(statuses.has(201) && statuses.has(400), 'both accepted and refused keys')
})

t.test('a 503 at enqueue leaves a key a retry can use: the retry runs the job, once', async t => {
  const { queue, up } = downMemoryQueue()
  // Retry back-offs pass at once; no wait is long enough to matter here.
  const test = await setup(t, { queue, consume: true, clock: new FakeClock({ autoAdvanceUpToMs: 5000 }) })
  const refused = await post(test, '/job/retry?open=1', 'k', 'x')
  t.equal(refused.status, 503)
  up()
  const retried = await post(test, '/job/retry?open=1', 'k', 'x')
  t.equal(retried.status, 201)
  t.equal(test.runs.get('retry'), 1)
})

t.test('a job orphaned before its message was sent runs when its key comes again', async t => {
  // The process that created the job died before queueing it, or could not queue it: a keyed
  // job is kept for the retry with its key (acceptance.ts), which leaves the same state.
  const queue = new RecordingQueue()
  const test = await setup(t, { queue, clock: new FakeClock({ autoAdvanceUpToMs: 5000 }) })
  queue.failSends = true
  t.equal((await post(test, '/job/orphan?open=1', 'k', 'x')).status, 503)
  const stillDown = await post(test, '/job/orphan?open=1', 'k', 'x', { prefer: 'respond-async' })
  t.equal(stillDown.status, 503, 'the queue still down: refused, not told 202 for a job nobody queued')
  queue.failSends = false
  const retried = await post(test, '/job/orphan?open=1', 'k', 'x', { prefer: 'respond-async' })
  t.equal(retried.status, 202, 'attached to the pending job')
  await queue.sentCount(1)
  t.equal(JSON.parse(queue.sent[0] as string).id, jobIdOf(retried), 'its message, sent again')
  t.same(await test.app.longRunning.handle(delivery(queue.sent[0] as string)), { ack: true })
  const result = await fetch(`${test.url}${retried.headers.get('location') ?? ''}`)
  t.equal(result.status, 201)
  t.equal(test.runs.get('orphan'), 1)
})

t.test('a request that finds the key but not yet its job creates the job; the first one then attaches', async t => {
  const memory = memoryStore()
  const creating = new Gate()
  const release = new Gate()
  let creates = 0
  const store = spyStore(memory, {
    create: async (job) => {
      if (++creates === 1) {
        creating.open()
        await release.opened
      }
      return await memory.create(job)
    }
  })
  const test = await setup(t, { store })
  const first = post(test, '/job/race?open=1', 'k', 'x')
  await creating.opened
  const second = await post(test, '/job/race?open=1', 'k', 'x')
  release.open()
  const answer = await first
  t.equal(second.status, 201)
  t.equal(answer.status, 201)
  t.equal(answer.headers.get('idempotent-replayed'), 'true', 'the first request lost the race to create, and attached')
  t.equal(test.runs.get('race'), 1)
})

t.test('a job that keeps vanishing between its read and its creation ends in a 503, never a loop', async t => {
  const memory = memoryStore()
  const store = spyStore(memory, {
    get: async () => undefined,
    create: async (job) => { throw new errors.JobExistsError(job.id) }
  })
  const test = await setup(t, { store })
  const answer = await post(test, '/job/vanishing?open=1', 'k', 'x')
  t.equal(answer.status, 503)
  t.equal(JSON.parse(answer.body.toString()).code, 'FST_LONG_RUNNING_ENQUEUE_FAILED')
  t.equal(answer.headers.get('retry-after'), '1')
})

/** POST with any header value Node lets through, for the keys `fetch` would refuse to send. */
async function rawPost (test: TestApp, path: string, key: string, body = ''): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const request = httpRequest(`${test.url}${path}`, { method: 'POST', headers: { 'idempotency-key': key, 'content-type': 'text/plain' } }, response => {
      const chunks: Buffer[] = []
      response.on('data', chunk => chunks.push(chunk))
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('latin1') }))
    })
    request.on('error', reject)
    request.end(body)
  })
}
