import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import awsLambdaFastify from '@fastify/aws-lambda'
import helmet from '@fastify/helmet'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import longRunning, { type LongRunningOptions } from '../../src/index.js'
import { fetchLongRunning } from '../../src/client/index.js'
import { prefersWaitingPage } from '../../src/http/waiting-page.js'
import { buildTestApp, closeTestApp, untilAborted, type TestApp } from '../helpers/app.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { lambdaContext, restEvent } from '../helpers/events.js'
import { pollUntil } from '../helpers/poll.js'

// Issue 30, point 1 (CONTRACT, HTTP behaviour 12): a browser tab whose wait ends unfinished gets
// a small page with the job's progress (202 + Refresh; a script polls the status and navigates
// to the result), instead of a blank chain of 303s. curl, fetch and the client see what they did.

/** What Chromium sends when a tab navigates (a typed URL, a link, a Refresh). */
const CHROMIUM = {
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7',
  'sec-fetch-mode': 'navigate',
  'sec-fetch-dest': 'document',
  'sec-fetch-site': 'none',
  'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36'
}
const FIREFOX = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' }
/** Safari before 16.4 sends no Sec-Fetch headers (nor does any browser to a plain-HTTP origin): Upgrade-Insecure-Requests tells a navigation. */
const OLD_SAFARI = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'upgrade-insecure-requests': '1' }
/** A navigation without Sec-Fetch headers, with `accept` as given. */
const plain = (accept: string): Record<string, string> => ({ accept, 'upgrade-insecure-requests': '1' })
const CURL = { accept: '*/*', 'user-agent': 'curl/8.5.0' }
/** The waiting page's polls. */
const POLL = { prefer: 'respond-async, return=minimal' }

interface Answer { status: number, headers: IncomingHttpHeaders, body: string }

/**
 * A GET over real HTTP with exactly these headers, redirects not followed. Not `fetch`: Node's
 * sends `Sec-Fetch-Mode: cors` whatever it is given, as a browser's `fetch()` does.
 */
async function get (url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    httpRequest(url, { method, headers }, response => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString() }))
    }).on('error', reject).end()
  })
}

async function testApp (t: Test, options: LongRunningOptions, routes?: Parameters<typeof buildTestApp>[1]): Promise<TestApp> {
  const test = await buildTestApp({ waitSeconds: 0, ...options }, routes)
  t.teardown(() => closeTestApp(test))
  await test.listen()
  return test
}

/** The nonces of the page's script and style, and the URL its link (and its polls) go to. */
function pageParts (body: string): { script?: string, style?: string, next?: string } {
  return {
    script: /<script nonce="([^"]+)">/.exec(body)?.[1],
    style: /<style nonce="([^"]+)">/.exec(body)?.[1],
    next: /<a id="next" href="([^"]+)">/.exec(body)?.[1]
  }
}

const LOCATION = /^\/async-response\/[0-9a-f-]{36}\?hop=(\d+)$/

t.test('a browser tab gets the waiting page once a wait ends unfinished, on the route and on /async-response, then the route\'s own response', async t => {
  const test = await testApp(t, {})
  const page = await get(`${test.url}/job/tab`, CHROMIUM)
  t.equal(page.status, 202, 'Accepted: not finished yet, as the JSON 202 says')
  t.equal(page.headers['content-type'], 'text/html; charset=utf-8')
  const location = page.headers.location ?? ''
  t.match(location, LOCATION)
  t.equal(page.headers['retry-after'], '1')
  t.equal(page.headers.refresh, `1; url=${location}`, 'with scripts off, the tab moves to the next wait on its own')
  t.equal(page.headers['cache-control'], 'no-store')
  t.equal(page.headers['referrer-policy'], 'no-referrer')
  const { script, style, next } = pageParts(page.body)
  t.equal(next, location, 'the page polls and navigates to the URL a 303 would carry')
  t.equal(page.headers['content-security-policy'],
    `default-src 'none'; script-src 'nonce-${script}'; style-src 'nonce-${style}'; connect-src 'self'; base-uri 'none'; form-action 'none'`,
    'no CSP of the app: the page\'s own, allowing its nonces and requests to this origin only')
  t.match(page.body, '<progress id="progress" max="1" aria-labelledby="heading"></progress>', 'no progress reported yet: an indeterminate bar')
  t.notMatch(page.body, /\b(?:src|https?:)/, 'nothing loaded from elsewhere')

  const again = await get(test.url + location, CHROMIUM)
  t.equal(again.status, 202)
  t.match(again.headers.location, /\?hop=2$/, 'each wait a new URL, as with 303s')
  t.not(pageParts(again.body).script, script, 'a fresh nonce every page')
  for (const browser of [FIREFOX, OLD_SAFARI]) t.equal((await get(test.url + location, browser)).status, 202)

  test.gates.open('tab')
  await pollUntil(async () => await get(test.url + location, POLL), answer => answer.status === 200)
  const result = await get(test.url + location, CHROMIUM)
  t.equal(result.status, 201)
  t.same(JSON.parse(result.body), { name: 'tab', body: null })
  t.same(result.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/'])
})

t.test('the page\'s polls (Prefer: respond-async, return=minimal): the status, then 200 done without the result, which the navigation gets', async t => {
  const test = await testApp(t, {}, (app, gates) => {
    app.get('/report', { longRunning: true }, async (request, reply) => {
      request.longRunning?.progress(0.25, 'a quarter')
      await gates.get('report').opened
      return await reply.header('set-cookie', 'report=1; Path=/').send('the report')
    })
  })
  const location = (await get(`${test.url}/report`, CURL)).headers.location ?? ''
  const status = await pollUntil(async () => await get(test.url + location, POLL), answer => answer.body.includes('progress'))
  t.equal(status.status, 202)
  t.equal(status.headers['preference-applied'], 'respond-async')
  t.match(JSON.parse(status.body), { status: 'running', progress: { fraction: 0.25, message: 'a quarter' } })

  const page = await get(test.url + location, CHROMIUM)
  t.match(page.body, '<progress id="progress" max="1" aria-labelledby="heading" value="0.25">25 %</progress>')
  t.match(page.body, '<p id="message">a quarter</p>')
  t.match(page.body, '<title>Working on it…</title>', 'running')
  t.equal(page.headers.vary, 'Accept, Sec-Fetch-Mode, Sec-Fetch-Dest, Upgrade-Insecure-Requests, Sec-Purpose', 'no cache hands the page to a client that gets a 303')

  test.gates.open('report')
  const done = await pollUntil(async () => await get(test.url + location, POLL), answer => answer.status !== 202)
  t.equal(done.status, 200)
  t.same(JSON.parse(done.body), { id: location.split(/[/?]/)[2], status: 'done', statusCode: 200, location: location.replace(/\d+$/, n => String(Number(n) + 1)) })
  t.equal(done.headers['preference-applied'], 'return=minimal')
  t.equal(done.headers['cache-control'], 'no-store')
  t.equal(done.headers['set-cookie'], undefined, 'not the result: none of its cookies')
  const result = await get(test.url + location, CHROMIUM)
  t.equal(result.body, 'the report', 'the navigation gets the result')
  t.same(result.headers['set-cookie'], ['report=1; Path=/'])
  const minimalAlone = await get(test.url + location, { ...CURL, prefer: 'return=minimal' })
  t.equal(minimalAlone.body, 'the report', 'return=minimal without respond-async: the result (an OData-style client sends it along with its 303s)')
  t.equal((await get(`${test.url}/report`, { prefer: 'return=minimal, respond-async' })).status, 202, 'on the route itself return=minimal is the route\'s business')
})

t.test('a job that ends in an error, is cancelled, times out, or is gone: the poll says so, and the navigation shows the plugin\'s usual answer', async t => {
  const clock = new FakeClock()
  const test = await testApp(t, { clock, timeoutSeconds: 1 }, (app, _gates, count) => {
    app.get('/stuck', { longRunning: true }, async (request) => {
      count('stuck')
      throw await untilAborted(request.longRunning?.signal)
    })
  })
  const answerOf = async (path: string): Promise<[Answer, Answer]> => {
    const location = (await get(test.url + path, CHROMIUM)).headers.location ?? ''
    if (path === '/job/cancelled') t.equal((await get(test.url + location, {}, 'DELETE')).status, 204)
    if (path === '/stuck') {
      await test.ran('stuck')
      await clock.armed(3) // the store's sweep, the attempt's timeout and its renewal
      await clock.advance(1000)
    }
    const poll = await pollUntil(async () => await get(test.url + location, POLL), answer => answer.status !== 202)
    return [poll, await get(test.url + location, CHROMIUM)]
  }
  test.gates.open('boom')
  // The timeout first, while its attempt's are the only timers armed but the store's sweep.
  for (const [path, statusCode, code] of [['/stuck', 504, 'FST_LONG_RUNNING_JOB_TIMEOUT'], ['/boom/boom', 418, undefined], ['/job/cancelled', 409, 'FST_LONG_RUNNING_JOB_CANCELLED']] as const) {
    const [poll, shown] = await answerOf(path)
    t.match(JSON.parse(poll.body), { status: 'done', statusCode }, `${path}: done, as the poll sees it`)
    t.equal(shown.status, statusCode, `${path}: the navigation shows the error`)
    t.match(JSON.parse(shown.body), { statusCode, ...(code === undefined ? {} : { code }) })
  }
  const gone = await get(`${test.url}/async-response/00000000-0000-4000-8000-000000000000?hop=3`, POLL)
  t.equal(gone.status, 404, 'an unknown or expired job: the page navigates and shows this 404')
  t.equal((await get(`${test.url}/async-response/00000000-0000-4000-8000-000000000000?hop=3`, CHROMIUM)).status, 404)
})

t.test('a result kept in S3: the poll says done without signing a URL; the navigation gets the 303 to it, which a tab follows', async t => {
  const signed: string[] = []
  const results = {
    thresholdBytes: 10,
    put: async (id: string) => ({ key: `${id}/body`, bytes: 100 }),
    url: async (body: { key: string }) => {
      signed.push(body.key)
      return `https://bucket.example/${body.key}?signature=1`
    },
    delete: async () => {}
  }
  const test = await testApp(t, { results }, (app, gates) => {
    app.get('/export', { longRunning: true }, async (_request, reply) => {
      await gates.get('export').opened
      return await reply.header('content-disposition', 'attachment; filename="export.csv"').type('text/csv').send('x'.repeat(100))
    })
  })
  const location = (await get(`${test.url}/export`, CHROMIUM)).headers.location ?? ''
  test.gates.open('export')
  const done = await pollUntil(async () => await get(test.url + location, POLL), answer => answer.status !== 202)
  t.match(JSON.parse(done.body), { status: 'done', statusCode: 200 })
  t.same(signed, [], 'no URL signed for a poll')
  const navigation = await get(test.url + location, CHROMIUM)
  t.equal(navigation.status, 303)
  t.equal(navigation.headers.location, `https://bucket.example/${location.split(/[/?]/)[2] as string}/body?signature=1`)
})

t.test('curl, curl -L, fetch, JSON, a page\'s fetch, Prefer: respond-async and the client see what they saw before', async t => {
  const test = await testApp(t, {})
  const first = async (headers: Record<string, string>): Promise<Answer> => await get(`${test.url}/job/other`, headers)
  const others: Record<string, Record<string, string>> = {
    curl: CURL,
    'no Accept': {},
    'application/json': { accept: 'application/json' },
    'a page\'s fetch asking for HTML': { accept: 'text/html', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' },
    'a same-origin fetch': { ...CHROMIUM, 'sec-fetch-mode': 'same-origin', 'sec-fetch-dest': 'empty' },
    'an image': { ...CHROMIUM, 'sec-fetch-dest': 'image' },
    'HTML and JSON alike': { accept: 'text/html, application/json' }
  }
  for (const [name, headers] of Object.entries(others)) {
    const answer = await first(headers)
    t.equal(answer.status, 303, name)
    t.equal(answer.headers['content-type'], 'application/json; charset=utf-8')
  }
  const accepted = await first({ ...CHROMIUM, prefer: 'respond-async' })
  t.equal(accepted.status, 202, 'Prefer: respond-async wins over Accept')
  t.equal(accepted.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(accepted.headers['preference-applied'], 'respond-async')

  const location = accepted.headers.location ?? ''
  const past = await get(test.url + location.replace(/hop=\d+/, 'hop=18'), CURL)
  t.equal(past.status, 202, 'past 18 hops: 202 + Refresh, JSON, as before')
  t.equal(past.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(past.headers.refresh, `1; url=${past.headers.location}`)

  // Node's fetch says Sec-Fetch-Mode: cors whatever it is given: never a page, even asking for HTML.
  const fetched = await fetch(`${test.url}/job/other`, { headers: CHROMIUM, redirect: 'manual' })
  t.equal(fetched.status, 303)
  await fetched.arrayBuffer()
  const client = fetchLongRunning(`${test.url}/job/client`, { headers: CHROMIUM })
  await test.ran('client')
  test.gates.open('client')
  t.equal((await client).status, 201, 'the client, sending a browser\'s Accept')
})

t.test('waitingPage: false: a tab follows 303s as every other client does', async t => {
  const test = await testApp(t, { waitingPage: false })
  const answer = await get(`${test.url}/job/off`, CHROMIUM)
  t.equal(answer.status, 303)
  t.equal(answer.headers['content-type'], 'application/json; charset=utf-8')
  const past = await get(test.url + (answer.headers.location ?? '').replace(/hop=\d+/, 'hop=18'), CHROMIUM)
  t.equal(past.status, 202)
  t.equal(past.headers['content-type'], 'application/json; charset=utf-8')
})

t.test('the progress message is escaped: no markup of a job\'s reaches the page', async t => {
  const evil = '</script><script>alert(1)</script><img src=x onerror="alert(2)">\'&'
  const test = await testApp(t, {}, (app, gates) => {
    app.get('/evil', { longRunning: true }, async (request) => {
      request.longRunning?.progress(0.5, evil)
      await gates.get('evil').opened
      return 'ok'
    })
  })
  const location = (await get(`${test.url}/evil`, CURL)).headers.location ?? ''
  await pollUntil(async () => await get(test.url + location, POLL), answer => answer.body.includes('progress'))
  const page = await get(test.url + location, CHROMIUM)
  t.match(page.body, '<p id="message">&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(2)&quot;&gt;&#39;&amp;</p>')
  t.notMatch(page.body, '<img')
  t.equal(page.body.match(/<script/g)?.length, 1, 'one script: the page\'s own')
  t.notMatch(page.body, 'innerHTML', 'the script writes text only')
})

t.test('a job still pending (no consumer): the page says it waits to start', async t => {
  const test = await testApp(t, { consume: false })
  const page = await get(`${test.url}/job/queued`, CHROMIUM)
  t.match(page.body, '<h1 id="heading">Waiting to start…</h1>')
})

t.test('under @fastify/helmet: its CSP and its nonces (enableCSPNonces), or its CSP as it is, with Refresh for when it blocks the script', async t => {
  for (const enableCSPNonces of [true, false]) {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(helmet, { enableCSPNonces })
    await app.register(longRunning, { waitSeconds: 0, consume: false })
    app.get('/slow', { longRunning: true }, async () => 'never')
    await app.listen({ port: 0, host: '127.0.0.1' })
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
    const page = await get(`${url}/slow`, CHROMIUM)
    t.equal(page.status, 202)
    const csp = page.headers['content-security-policy'] ?? ''
    t.match(csp, /^default-src 'self';/, 'helmet\'s CSP, not the page\'s')
    const { script, style } = pageParts(page.body)
    if (enableCSPNonces) {
      t.match(csp, `script-src 'self' 'nonce-${script}'`, 'the page\'s script carries helmet\'s nonce')
      t.match(csp, `'nonce-${style}'`, 'and its style')
    } else {
      t.notMatch(csp, 'nonce-', 'the inline script is blocked...')
      t.equal(page.headers.refresh, `1; url=${page.headers.location}`, '...and Refresh keeps the tab waiting')
    }
  }
})

t.test('basePath, and an API Gateway stage: the page\'s URLs are those a 303 would carry', async t => {
  const test = await testApp(t, { basePath: '/prod' })
  const page = await get(`${test.url}/job/based`, CHROMIUM)
  t.match(page.headers.location, /^\/prod\/async-response\//)
  t.equal(pageParts(page.body).next, page.headers.location)
  t.equal(page.headers.refresh, `1; url=${page.headers.location}`)

  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(longRunning, { waitSeconds: 0, consume: false })
  app.get('/slow', { longRunning: true }, async () => 'never')
  const proxy = awsLambdaFastify(app)
  const answer = await proxy(restEvent({ method: 'GET', path: '/slow', headers: CHROMIUM }) as never, lambdaContext() as never) as { statusCode: number, headers: Record<string, string>, body: string }
  t.equal(answer.statusCode, 202)
  t.match(answer.headers.location, /^\/prod\/async-response\/[0-9a-f-]{36}\?hop=1$/, 'the stage the client used')
  t.equal(pageParts(answer.body).next, answer.headers.location)
  t.equal(answer.headers.refresh, `1; url=${answer.headers.location}`)
})

t.test('a bound job (bindTo): the page and its polls carry the caller\'s cookie; another caller gets the same 404 as ever', async t => {
  const test = await testApp(t, { bindTo: request => /user=(\w+)/.exec(request.headers.cookie ?? '')?.[1] })
  const alice = { cookie: 'user=alice' }
  const page = await get(`${test.url}/job/bound`, { ...CHROMIUM, ...alice })
  t.equal(page.status, 202)
  const location = page.headers.location ?? ''
  t.equal((await get(test.url + location, { ...POLL, ...alice })).status, 202, 'alice\'s poll')
  t.equal((await get(test.url + location, { ...POLL, cookie: 'user=bob' })).status, 404, 'bob\'s poll')
  t.equal((await get(test.url + location, CHROMIUM)).status, 404, 'a tab without the cookie: the 404, never a page')
  test.gates.open('bound')
  await pollUntil(async () => await get(test.url + location, { ...POLL, ...alice }), answer => answer.status === 200)
  const result = await get(test.url + location, { ...CHROMIUM, ...alice })
  t.equal(result.status, 201)
})

t.test('which requests prefer the page: Accept\'s weights, and Sec-Fetch where the browser sends it', async t => {
  const cases: Array<[Record<string, string | string[]>, boolean]> = [
    [CHROMIUM, true],
    [FIREFOX, true],
    [OLD_SAFARI, true],
    [{ ...CHROMIUM, 'sec-fetch-dest': 'iframe' }, true],
    [plain('text/html'), true],
    [plain('TEXT/HTML;Q=1, */*;q=0.1'), true],
    [plain('text/*, application/json;q=0.5'), true],
    [plain('text/html;q=0, text/html;q=0.9, */*;q=0.8'), true],
    [{}, false],
    [plain('*/*'), false],
    [plain('application/json, text/html;q=0.9'), false],
    [plain('text/html, */*'), false],
    [plain('text/html;q=0'), false],
    [plain('text/html;q=2'), false],
    [plain('text/html;q=x, application/json'), false],
    [plain('html, application/json'), false],
    [plain('application/*'), false],
    [{ ...CHROMIUM, 'sec-fetch-mode': ['navigate', 'cors'] }, false],
    // Not navigations: curl, axios or a crawler asking for HTML, a page's XHR on plain HTTP (jQuery's
    // dataType 'html'), a navigation's header that is not '1', and speculative loads.
    [{ accept: 'text/html' }, false],
    [{ accept: 'text/html, */*; q=0.01', 'x-requested-with': 'XMLHttpRequest' }, false],
    [{ accept: 'text/html', 'upgrade-insecure-requests': '0' }, false],
    [{ ...CHROMIUM, 'sec-purpose': 'prefetch;prerender' }, false],
    [{ ...CHROMIUM, 'sec-purpose': 'prefetch' }, false],
    [{ ...OLD_SAFARI, purpose: 'prefetch' }, false]
  ]
  for (const [headers, expected] of cases) t.equal(prefersWaitingPage(headers), expected, JSON.stringify(headers))
})
