import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { buildTestApp, closeTestApp } from '../helpers/app.js'
import { follow } from '../helpers/child.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { RecordingQueue } from '../helpers/recording-queue.js'
import { pollUntil } from '../helpers/poll.js'

// Real HTTP on an ephemeral port, real clients: Node's fetch, and curl where installed.
const run = promisify(execFile)
const hasCurl = await run('curl', ['--version']).then(() => true, () => false)

t.test('a job finished within the wait answers directly, without a redirect', async t => {
  const test = await buildTestApp({ waitSeconds: 5 })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const response = await fetch(`${url}/job/quick?open=1`, { redirect: 'manual' })
  t.equal(response.status, 201)
  t.equal(response.headers.get('x-job-name'), 'quick')
  t.same(response.headers.getSetCookie(), ['a=1; Path=/', 'b=2; Path=/'])
  t.same(await response.json(), { name: 'quick', body: null })
})

t.test('a slow job is handed over through a chain of 303s that fetch follows', async t => {
  const test = await buildTestApp({ waitSeconds: 0.05, clock: new FakeClock({ autoAdvanceUpToMs: 50 }) })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const response = await fetch(`${url}/hops/2`)
  t.equal(response.status, 200)
  t.same(await response.json(), { hops: 2 })
  t.ok(response.redirected)
  const hop = Number(new URL(response.url).searchParams.get('hop'))
  t.ok(hop >= 2, `delivered after ${hop} redirects`)
  t.equal(test.runs.get('hops'), 1, 'the handler ran once')
})

t.test('each 303 is relative, no-store, and points at a new URL', async t => {
  const test = await buildTestApp({ waitSeconds: 0 })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const first = await fetch(`${url}/job/slow`, { redirect: 'manual' })
  t.equal(first.status, 303)
  const location = first.headers.get('location') ?? ''
  t.match(location, /^\/async-response\/[0-9a-f-]{36}\?hop=1$/)
  t.equal(first.headers.get('cache-control'), 'no-store')
  t.equal(first.headers.get('referrer-policy'), 'no-referrer')
  const body = await first.json() as { id: string, status: string, location: string }
  t.equal(body.location, location)
  t.ok(['pending', 'running'].includes(body.status))
  const second = await fetch(url + location, { redirect: 'manual' })
  t.equal(second.status, 303)
  t.equal(second.headers.get('location'), location.replace('hop=1', 'hop=2'))
  test.gates.open('slow')
  const last = await fetch(url + (second.headers.get('location') ?? ''))
  t.equal(last.status, 201)
})

t.test('a POST answered through 303 is fetched with GET and keeps status, headers and bytes', async t => {
  const test = await buildTestApp({ waitSeconds: 0 })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const bodies = {
    json: { type: 'application/json', body: JSON.stringify({ a: [1, 2, { b: 'ü' }] }) },
    text: { type: 'text/plain; charset=utf-8', body: 'plain text, ünïcødé ✓' },
    binary: { type: 'application/octet-stream', body: Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) % 256)) }
  }
  for (const [name, { type, body }] of Object.entries(bodies)) {
    const first = await fetch(`${url}/job/${name}`, { method: 'POST', headers: { 'content-type': type }, body, redirect: 'manual' })
    t.equal(first.status, 303, `${name}: 303`)
    test.gates.open(name)
    const final = await fetch(url + (first.headers.get('location') ?? ''))
    t.equal(final.status, 201, `${name}: the route's own status`)
    t.equal(final.headers.get('x-job-name'), name)
    t.same(final.headers.getSetCookie(), ['a=1; Path=/', 'b=2; Path=/'], `${name}: both cookies`)
    const bytes = Buffer.from(await final.arrayBuffer())
    if (name === 'json') t.same(JSON.parse(bytes.toString()), { name: 'json', body: JSON.parse(body as string) })
    else t.ok(bytes.equals(Buffer.from(body)), `${name}: byte-exact`)
  }
  t.same([...test.runs.values()], [1, 1, 1], 'each handler ran once')
})

t.test('fetch follows a POST through the 303 chain to the final response', async t => {
  const test = await buildTestApp({ waitSeconds: 0.05, clock: new FakeClock({ autoAdvanceUpToMs: 50 }) }, (app, gates) => {
    // Opens the gate only once the client is inside the redirect chain.
    app.addHook('onResponse', async (request) => { if (request.url.includes('hop=1')) gates.open('post') })
  })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const response = await fetch(`${url}/job/post`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: 'a,b\n1,2\n' })
  t.equal(response.status, 201)
  t.equal(response.headers.get('content-type'), 'text/csv')
  t.equal(await response.text(), 'a,b\n1,2\n')
})

t.test('after 18 hops the wait answers 202 with Location, Retry-After and Refresh', async t => {
  const test = await buildTestApp({ waitSeconds: 0 })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const response = await fetch(`${url}/job/never`)
  t.equal(response.status, 202)
  t.equal(new URL(response.url).searchParams.get('hop'), '18', 'after 18 redirects')
  const location = response.headers.get('location') ?? ''
  t.match(location, /\?hop=19$/)
  t.equal(response.headers.get('retry-after'), '1')
  t.equal(response.headers.get('refresh'), `1; url=${location}`)
  t.equal(response.headers.get('cache-control'), 'no-store')
  t.equal(response.headers.get('preference-applied'), null)
  // A browser's Refresh starts a new navigation, which gets another 18 redirects.
  const again = await fetch(url + location, { redirect: 'manual' })
  t.equal(again.status, 303)
  t.match(again.headers.get('location'), /\?hop=20$/)
})

t.test('Prefer: respond-async answers 202 at once on both requests; the status shows progress', async t => {
  const test = await buildTestApp({ waitSeconds: 30 }, (app, gates) => {
    app.get('/progress', { longRunning: true }, async (request) => {
      request.longRunning?.progress(0.5, 'half way')
      await gates.get('progress').opened
      return 'done'
    })
  })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const prefer = { prefer: 'respond-async' }
  const first = await fetch(`${url}/progress`, { headers: prefer, redirect: 'manual' })
  t.equal(first.status, 202)
  t.equal(first.headers.get('preference-applied'), 'respond-async')
  t.equal(first.headers.get('retry-after'), '1')
  const location = first.headers.get('location') ?? ''
  const accepted = await first.json() as { id: string, status: string, location: string }
  t.match(accepted, { status: /^(pending|running)$/, location })
  t.equal(location, `/async-response/${accepted.id}?hop=1`)

  // The progress write is the job's own business: poll until it shows (each answer comes at once).
  const statuses: number[] = []
  const status = await pollUntil(async () => {
    const poll = await fetch(url + location, { headers: prefer, redirect: 'manual' })
    statuses.push(poll.status)
    return await poll.json() as { status: string, progress?: unknown }
  }, status => status.progress !== undefined)
  t.ok(statuses.every(code => code === 202), 'every poll answered 202 at once')
  t.same(status.progress, { fraction: 0.5, message: 'half way' })
  t.equal(status.status, 'running')

  test.gates.open('progress')
  const done = await fetch(url + location)
  t.equal(done.status, 200)
  t.equal(await done.text(), 'done')
  const again = await fetch(url + location, { headers: prefer })
  t.equal(again.status, 200, 'a finished job answers with its result even to respond-async')
})

t.test('Prefer: respond-async, wait=N waits up to N seconds, then answers 202 with Retry-After: 0', async t => {
  const clock = new FakeClock()
  const test = await buildTestApp({ waitSeconds: 30, clock })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const prefer = { prefer: 'respond-async, wait=1' }
  const answered = fetch(`${url}/job/late`, { headers: prefer, redirect: 'manual' })
  await test.ran('late')
  await clock.armed(5) // the store's sweep, the attempt's timeout, renewal and lease lapse, and the wait
  await clock.advance(1000)
  const first = await answered
  t.equal(first.status, 202, 'a job still running after the wait is accepted')
  t.equal(first.headers.get('preference-applied'), 'respond-async, wait=1', 'both preferences applied')
  t.equal(first.headers.get('retry-after'), '0', 'the server waited: the client may ask again at once')
  const location = first.headers.get('location') ?? ''
  // A job that ends within the wait answers with its result, on the first request or a later one.
  const done = fetch(url + location, { headers: { prefer: 'respond-async, wait=30' } })
  await test.ran('late')
  test.gates.open('late')
  const result = await done
  t.equal(result.status, 201)
  t.same(await result.json(), { name: 'late', body: null })
})

t.test('Prefer: respond-async, wait=N on a route that waits 0 seconds answers at once with Retry-After: 1', async t => {
  const test = await buildTestApp({ waitSeconds: 0 })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const first = await fetch(`${url}/job/nowait`, { headers: { prefer: 'respond-async, wait=20' }, redirect: 'manual' })
  t.equal(first.status, 202)
  t.equal(first.headers.get('retry-after'), '1', 'no wait happened: the client should not ask again at once')
})

t.test('Prefer: wait=0 shortens the wait to nothing', async t => {
  const test = await buildTestApp({ waitSeconds: 600 })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const response = await fetch(`${url}/job/w`, { headers: { prefer: 'wait=0' }, redirect: 'manual' })
  t.equal(response.status, 303)
})

t.test('HEAD on a result answers like GET without a body', async t => {
  const test = await buildTestApp({ waitSeconds: 0 })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const first = await fetch(`${url}/job/head`, { method: 'POST', body: 'xyz', headers: { 'content-type': 'text/plain' }, redirect: 'manual' })
  t.equal(first.status, 303)
  const location = first.headers.get('location') ?? ''
  test.gates.open('head')
  const head = await fetch(url + location, { method: 'HEAD', headers: { prefer: 'wait=30' } })
  t.equal(head.status, 201)
  t.equal(head.headers.get('x-job-name'), 'head')
  t.equal(await head.text(), '')
})

t.test('closing on the embedded default: running jobs finish and their clients get the result; past the grace, a 303', async t => {
  const clock = new FakeClock()
  const test = await buildTestApp({ waitSeconds: 600, clock, closeGraceSeconds: 10 })
  const url = await test.listen()
  const finishing = fetch(`${url}/job/finishing`, { redirect: 'manual' })
  const stuck = fetch(`${url}/job/stuck`, { redirect: 'manual' })
  await Promise.all([test.ran('finishing'), test.ran('stuck')])
  const closed = test.app.close()
  test.gates.open('finishing')
  const done = await finishing
  t.equal(done.status, 201, 'a job that ends within the grace answers its client')
  t.equal(await done.text(), '{"name":"finishing","body":null}')
  await clock.armed(3) // the stuck attempt's timeout and renewal, and the grace
  await clock.advance(10_000)
  const response = await stuck
  t.equal(response.status, 303, 'past the grace, the waiting client is told where to ask again')
  test.gates.openAll()
  await closed
})

t.test('closing with a shared queue ends every wait with a 303 at once', async t => {
  const queue = new RecordingQueue()
  const test = await buildTestApp({ waitSeconds: 600, queue })
  const url = await test.listen()
  const pending = fetch(`${url}/job/stuck`, { redirect: 'manual' })
  await queue.sentCount(1)
  const closed = test.app.close()
  t.equal((await pending).status, 303)
  await closed
})

t.test('100 overlapping jobs each receive exactly their own response', async t => {
  const test = await buildTestApp({ waitSeconds: 0.02, concurrency: 100, clock: new FakeClock({ autoAdvanceUpToMs: 20 }) })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const names = Array.from({ length: 100 }, (_, i) => `n${i}`)
  const responses = Promise.all(names.map(async name => {
    const body = Buffer.from(`${name}:`.repeat(50 + Number(name.slice(1))))
    // Past 18 hops a busy machine gets a 202, which fetch does not follow: `follow` does.
    const response = await follow(`${url}/job/${name}`, { method: 'POST', body, headers: { 'content-type': 'application/x-test' } })
    return { name, body, response, bytes: Buffer.from(await response.arrayBuffer()) }
  }))
  // Release in reverse order once every job has started, so that completions interleave.
  await Promise.all(names.map(async name => await test.ran(name)))
  for (const name of [...names].reverse()) test.gates.open(name)
  for (const { name, body, response, bytes } of await responses) {
    t.equal(response.status, 201)
    t.equal(response.headers.get('x-job-name'), name)
    t.ok(bytes.equals(body), `${name} got its own bytes`)
  }
  t.ok([...test.runs.values()].every(count => count === 1), 'every handler ran once')
})

t.test('curl -L follows the chain', { skip: hasCurl ? false : 'curl not installed' }, async t => {
  const test = await buildTestApp({ waitSeconds: 0.05, clock: new FakeClock({ autoAdvanceUpToMs: 50 }) })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const { stdout } = await run('curl', ['-sSL', '-w', '\n%{http_code} %{num_redirects}', `${url}/hops/3`])
  const [body, status] = stdout.split('\n')
  t.same(JSON.parse(body ?? ''), { hops: 3 })
  const [code, redirects] = (status ?? '').split(' ')
  t.equal(code, '200')
  t.ok(Number(redirects) >= 3)
})
