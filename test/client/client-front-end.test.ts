import t from 'tap'
import { fetchLongRunning } from '../../src/client/index.js'
import { buildTestApp, closeTestApp } from '../helpers/app.js'
import { startFrontEnd, type FrontEndAnswer } from '../helpers/front-end.js'

// Issue 24, point 3: a front end's own errors (API Gateway's 500 when Lambda throttles, its 502
// and 504; an ALB's 502, 503, 504) are not the route's answer. The client tells them from the
// plugin's by `Preference-Applied`, which every plugin answer names, and asks again, with
// back-off and Retry-After, within `retries`. A real proxy in front of the app answers them.

const THROTTLED: FrontEndAnswer = { status: 500, body: '{"message": "Internal server error"}' }
const BAD_GATEWAY: FrontEndAnswer = { status: 502, headers: { 'retry-after': '1' }, body: '{"message": "Internal server error"}' }
// The app took the request and answered; the front end had given up (an integration timeout).
const TIMED_OUT: FrontEndAnswer = { status: 504, body: '{"message": "Endpoint request timed out"}', afterApp: true }

const isStatusRequest = (method: string, url: string): boolean => method === 'GET' && url.startsWith('/async-response/')

t.test('a front end that answers 500/502/504 on some status requests: the client still returns the route\'s answer', async t => {
  const test = await buildTestApp({ waitSeconds: 25 })
  t.teardown(() => closeTestApp(test))
  let statusRequests = 0
  const faults = [THROTTLED, undefined, BAD_GATEWAY, undefined, TIMED_OUT]
  const front = await startFrontEnd(t, await test.listen(), (method, url) => {
    if (!isStatusRequest(method, url)) return undefined
    const fault = faults[statusRequests++]
    // Three of the front end's errors met: the job may end now.
    if (fault === TIMED_OUT) test.gates.open('fe')
    return fault
  })
  const response = await fetchLongRunning(`${front.url}/job/fe`, { method: 'POST', body: 'through the front end', headers: { 'content-type': 'text/plain' } }, { waitSeconds: 0 })
  t.equal(response.status, 201)
  t.equal(response.headers.get('x-job-name'), 'fe')
  t.equal(await response.text(), 'through the front end')
  t.same(front.answered.map(answer => answer.status), [500, 502, 504], 'each asked again')
  t.equal(test.runs.get('fe'), 1)
})

t.test('a keyed first request that meets the front end\'s errors is sent again with its key: the handler runs once', async t => {
  const keys: Array<string | undefined> = []
  const test = await buildTestApp({ waitSeconds: 25 }, (app) => {
    app.addHook('onRequest', async request => { if (request.method === 'POST' && request.longRunning === null) keys.push(request.headers['idempotency-key'] as string) })
  })
  t.teardown(() => closeTestApp(test))
  let posts = 0
  const front = await startFrontEnd(t, await test.listen(), (method) => {
    if (method !== 'POST') return undefined
    return [BAD_GATEWAY, TIMED_OUT][posts++]
  })
  const response = await fetchLongRunning(`${front.url}/job/kept?open=1`, { method: 'POST', body: 'once', headers: { 'content-type': 'text/plain' } })
  t.equal(response.status, 201)
  t.equal(await response.text(), 'once')
  t.same(front.answered.map(answer => answer.status), [502, 504])
  t.equal(keys.length, 2, 'the 502 never reached the app; the 504 did, and so did the retry')
  t.equal(new Set(keys).size, 1, 'with the same key')
  t.equal(test.runs.get('kept'), 1, 'the retry attached to the job the 504 hid')
})

t.test('a first request without a key meets a front end\'s error: that is the call\'s answer, not sent again', async t => {
  const test = await buildTestApp({ waitSeconds: 25 })
  t.teardown(() => closeTestApp(test))
  const front = await startFrontEnd(t, await test.listen(), (method, url) => isStatusRequest(method, url) ? undefined : BAD_GATEWAY)
  const response = await fetchLongRunning(`${front.url}/job/unkeyed?open=1`)
  t.equal(response.status, 502, 'a GET could run twice: the server could not tell a retry from a new job')
  t.equal(front.answered.length, 1)
  const post = await fetchLongRunning(`${front.url}/job/unkeyed?open=1`, { method: 'POST', body: 'x' }, { idempotencyKey: false })
  t.equal(post.status, 502)
  t.equal(front.answered.length, 2)
})

t.test('status requests meeting the front end\'s errors beyond `retries`: the last one is the answer', async t => {
  const test = await buildTestApp({ waitSeconds: 25 })
  t.teardown(() => closeTestApp(test))
  const front = await startFrontEnd(t, await test.listen(), (method, url) => isStatusRequest(method, url) ? THROTTLED : undefined)
  const response = await fetchLongRunning(`${front.url}/job/stuck`, {}, { waitSeconds: 0, retries: 1 })
  t.equal(response.status, 500)
  t.same(await response.json(), { message: 'Internal server error' })
  t.equal(front.answered.length, 2, 'sent once and retried once')
})

t.test('the plugin\'s own 5xx, and a route\'s, are answers: never sent again', async t => {
  const test = await buildTestApp({ waitSeconds: 25 }, (app, gates) => {
    app.post('/crash', { longRunning: true }, async () => {
      await gates.get('crash').opened
      throw new Error('boom')
    })
  })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const statuses: number[] = []
  const recording = async (request: Request): Promise<Response> => {
    const response = await fetch(request)
    statuses.push(response.status)
    return response
  }
  const response = await fetchLongRunning(`${url}/crash`, { method: 'POST', body: 'x' }, {
    waitSeconds: 0, fetch: recording, onProgress: () => test.gates.open('crash')
  })
  t.equal(response.status, 500)
  t.match(await response.json(), { message: 'boom' })
  t.match(response.headers.get('preference-applied'), /wait=0/)
  t.equal(statuses.filter(status => status === 500).length, 1, 'the route\'s 500, marked by the plugin, once')
})
