/// <reference lib="dom" />
import helmet from '@fastify/helmet'
import { readFile } from 'node:fs/promises'
import Fastify from 'fastify'
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { buildApp } from '../../example/app.js'
import longRunning, { type LongRunningOptions } from '../../src/index.js'
import { Gate } from '../helpers/gate.js'
import { childProcesses, listeningUrl, stopChild } from '../helpers/child.js'

// `npm run test:browser`: the example in headless Chromium (Debian's `chromium`, see CONTRIBUTING.md),
// as a browser, not imagined: a tab on the waiting page (its bar moving without a reload, then
// the result; with scripts off or blocked, through Refresh; a bound job; a hostile progress
// message), a page of another origin fetching with CORS, a tab kept waiting past the browser's
// redirect limit by 202 + Refresh with the waiting page off, and the client in a page of another
// origin, on the embedded default and on `npm run dev:aws` (results in S3).
// `SCREENSHOT=1` writes docs/waiting-page.png from the first test.
t.setTimeout(120_000)

const browser: Browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
})
t.teardown(() => browser.close())

async function example (options: LongRunningOptions, corsOrigins: string[] = []): Promise<string> {
  const app = await buildApp(options, {}, corsOrigins)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
}

/**
 * A new tab that notes the status of every response it receives; in a context of its own
 * (closed after the test) when `context` options are given.
 */
async function tab (context?: { test: Test, options: BrowserContextOptions }): Promise<{ page: Page, statuses: number[] }> {
  let page: Page
  if (context === undefined) page = await browser.newPage()
  else {
    const made = await browser.newContext(context.options)
    context.test.teardown(() => made.close())
    page = await made.newPage()
  }
  const statuses: number[] = []
  page.on('response', response => statuses.push(response.status()))
  return { page, statuses }
}

/** Whether the tab still shows the document it showed when `mark` ran: no reload, no navigation. */
async function mark (page: Page): Promise<() => Promise<boolean>> {
  await page.evaluate(() => { (window as unknown as { marked: boolean }).marked = true })
  return async () => await page.evaluate(() => (window as unknown as { marked?: boolean }).marked === true)
}

const bar = async (page: Page): Promise<number> => await page.$eval('#progress', progress => (progress as HTMLProgressElement).position)

// The tab: a 30 s job with WAIT_SECONDS=1, the page (after the first 1 s wait), two
// moves of the bar (polls every 2 s), then the result, all in one document but the result.
t.test('a tab on a 30 s job: the waiting page within 3 s, its bar moving without a reload, then the route\'s JSON', async t => {
  const url = await example({ waitSeconds: 1 })
  const { page, statuses } = await tab()
  let loads = 0
  page.on('load', () => { loads += 1 })
  await page.goto(`${url}/payload?delay=30`, { timeout: 3000 })
  t.equal(await page.title(), 'Working on it…')
  t.match(page.url(), /\/async-response\/[0-9a-f-]{36}\?hop=1$/, 'the address bar shows the job\'s URL: a reload waits again, never starts another job')
  const same = await mark(page)
  const first = await bar(page)
  await page.waitForFunction(first => (document.getElementById('progress') as HTMLProgressElement).position > first, first, { timeout: 10_000 })
  const second = await bar(page)
  await page.waitForFunction(second => (document.getElementById('progress') as HTMLProgressElement).position > second, second, { timeout: 10_000 })
  t.ok(await same(), `the bar moved twice (${first}, ${second}, ${await bar(page)}) in the same document`)
  t.match(await page.textContent('#message'), /^\d+ of 30 seconds$/)
  t.equal(loads, 1, 'no reload')
  if (process.env.SCREENSHOT === '1') {
    await page.setViewportSize({ width: 640, height: 280 })
    await page.screenshot({ path: 'docs/waiting-page.png' })
  }
  await page.waitForFunction(() => document.body.textContent?.includes('MESSAGE'), undefined, { timeout: 40_000 })
  t.match(await page.textContent('body'), '{"MESSAGE":"It took 30 seconds to generate this."}')
  t.equal(loads, 2, 'one navigation, to the result')
  t.notOk(statuses.includes(303), `no blank 303s: ${statuses.join(' ')}`)
  await page.close()
})

t.test('with scripts off, the page keeps the tab waiting through Refresh and the result shows', async t => {
  const url = await example({ waitSeconds: 1 })
  const { page, statuses } = await tab({ test: t, options: { javaScriptEnabled: false } })
  await page.goto(`${url}/payload?delay=4`, { timeout: 3000 })
  t.equal(await page.title(), 'Working on it…')
  await page.waitForFunction(() => document.body.textContent?.includes('MESSAGE'), undefined, { timeout: 30_000 })
  t.match(await page.textContent('body'), '{"MESSAGE":"It took 4 seconds to generate this."}')
  t.ok(statuses.filter(status => status === 202).length >= 2, `a page at every wait: ${statuses.join(' ')}`)
  t.notOk(statuses.includes(303))
  await page.close()
})

t.test('a result the browser downloads: the file arrives by the navigation, and the page says it is done', async t => {
  const url = await example({ waitSeconds: 1 })
  const { page } = await tab({ test: t, options: { acceptDownloads: true } })
  await page.goto(`${url}/bytes?size=1000&delay=4`, { timeout: 3000 })
  t.equal(await page.title(), 'Working on it…')
  const download = await page.waitForEvent('download', { timeout: 30_000 })
  const path = await download.path()
  const bytes = await readFile(path)
  t.equal(bytes.length, 1000)
  t.ok(bytes.every((byte, i) => byte === i % 251), 'byte i = i % 251')
  t.equal(await page.title(), 'Done: opening the result…', 'the page stays, saying so, not looking stuck')
  t.equal(await page.$eval('#progress', progress => (progress as HTMLProgressElement).position), 1)
  await page.close()
})

t.test('a bound job behind a strict CSP: the polls carry the cookie, a hostile message stays text, the route\'s page shows', async t => {
  const gates = [new Gate(), new Gate()]
  const evil = '<img src=x onerror="window.pwned=1"></script><script>window.pwned=2</script>'
  const app = Fastify()
  t.teardown(async () => {
    for (const gate of gates) gate.open()
    await app.close()
  })
  await app.register(helmet, { enableCSPNonces: true })
  await app.register(longRunning, { waitSeconds: 0.5, bindTo: request => /user=(\w+)/.exec(request.headers.cookie ?? '')?.[1] })
  app.get('/report', { longRunning: true }, async (request, reply) => {
    request.longRunning?.progress(0.25, evil)
    await gates[0]?.opened
    request.longRunning?.progress(0.75, `${evil} 2`)
    await gates[1]?.opened
    return await reply.type('text/html').send('<!doctype html><title>Report</title><h1>Your report</h1>')
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const context = await browser.newContext()
  t.teardown(() => context.close())
  await context.addCookies([{ name: 'user', value: 'alice', url }])
  const page = await context.newPage()
  const violations: string[] = []
  page.on('console', message => { if (/Content.Security.Policy/i.test(message.text())) violations.push(message.text()) })
  await page.goto(`${url}/report`, { timeout: 3000 })
  const same = await mark(page)
  await page.waitForFunction(() => (document.getElementById('progress') as HTMLProgressElement).position === 0.25, undefined, { timeout: 10_000 })
  t.equal(await page.textContent('#message'), evil, 'the message as text')
  gates[0]?.open()
  await page.waitForFunction(() => (document.getElementById('progress') as HTMLProgressElement).position === 0.75, undefined, { timeout: 10_000 })
  t.equal(await page.textContent('#message'), `${evil} 2`, 'updated by a poll, as text')
  t.ok(await same(), 'by a poll, with alice\'s cookie: no reload')
  t.equal(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned), undefined, 'no markup of the job\'s ran')
  t.same(violations, [], 'the page\'s script and style ran under helmet\'s nonces')
  gates[1]?.open()
  await page.waitForFunction(() => document.title === 'Report', undefined, { timeout: 15_000 })
  t.equal(await page.textContent('h1'), 'Your report')
  await page.close()
})

t.test('under a CSP that blocks the page\'s script, Refresh still brings the result', async t => {
  const gate = new Gate()
  const app = Fastify()
  t.teardown(async () => {
    gate.open()
    await app.close()
  })
  // Helmet without nonces: `script-src 'self'` refuses every inline script.
  await app.register(helmet)
  await app.register(longRunning, { waitSeconds: 0.5 })
  app.get('/report', { longRunning: true }, async () => {
    await gate.opened
    return 'done'
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const { page, statuses } = await tab()
  await page.goto(`${url}/report`, { timeout: 3000 })
  t.equal(await page.evaluate(() => location.pathname), '/report', 'no script ran (it would have moved the URL to the job\'s)')
  await page.waitForURL(/\/async-response\//, { timeout: 10_000 })
  gate.open()
  await page.waitForFunction(() => document.body.textContent === 'done', undefined, { timeout: 15_000 })
  t.ok(statuses.filter(status => status === 202).length >= 2, `pages until the result: ${statuses.join(' ')}`)
  await page.close()
})

t.test('a page of another origin POSTs to /echo with fetch and CORS, and gets the body', async t => {
  const other = Fastify()
  other.get('/', async (_request, reply) => await reply.type('text/html').send('<!doctype html><title>other origin</title><pre id="out">waiting</pre>'))
  await other.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => other.close())
  const otherUrl = `http://127.0.0.1:${(other.server.address() as { port: number }).port}`
  const url = await example({ waitSeconds: 0.5 }, [otherUrl])
  const page = await browser.newPage()
  await page.goto(otherUrl)
  const result = await page.evaluate(async (target) => {
    const response = await fetch(`${target}/echo?delay=1.5`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello from another origin' })
    const text = await response.text()
    document.getElementById('out')!.textContent = text
    return { status: response.status, redirected: response.redirected, text }
  }, url)
  t.same(result, { status: 201, redirected: true, text: 'hello from another origin' })
  await page.close()
})

t.test('waitingPage: false: a job beyond 18 hops keeps the tab waiting through 303s, then Refresh, until the result shows', async t => {
  const url = await example({ waitSeconds: 0.1, waitingPage: false })
  const { page, statuses } = await tab()
  await page.goto(`${url}/payload?delay=4`, { timeout: 30_000 })
  await page.waitForFunction(() => document.body.textContent?.includes('MESSAGE'), undefined, { timeout: 30_000 })
  t.match(await page.textContent('body'), '{"MESSAGE":"It took 4 seconds to generate this."}')
  t.ok(statuses.includes(202), 'the tab got a 202 with Refresh on its way')
  t.ok(statuses.filter(status => status === 303).length >= 18, 'after 18 redirects')
  await page.close()
})

/**
 * A page of another origin with a progress bar and a Cancel button, running the package's
 * client (`fastify-long-running/client`, bundled for the browser as an app would) against the
 * example: `start(path)` shows progress in `#bar`, the outcome in `#out`, the job URL in `#job`.
 */
async function clientBundle (): Promise<string> {
  const { build } = await import('esbuild')
  // platform 'browser': a Node-only import in the client would fail this build.
  const bundle = await build({ entryPoints: ['src/client/index.ts'], bundle: true, format: 'esm', platform: 'browser', write: false })
  return bundle.outputFiles[0]?.text ?? ''
}

async function clientPage (): Promise<Page> {
  const client = await clientBundle()
  let url = ''
  const other = Fastify()
  other.get('/client.js', async (_request, reply) => await reply.type('text/javascript').send(client))
  other.get('/', async (_request, reply) => await reply.type('text/html').send(`<!doctype html><title>report</title>
<progress id="bar" max="1" value="0"></progress> <button id="cancel">Cancel</button>
<pre id="out">idle</pre><pre id="job"></pre>
<script type="module">
  import { fetchLongRunning } from '/client.js'
  window.start = async (path) => {
    const controller = new AbortController()
    document.getElementById('cancel').onclick = () => controller.abort()
    const bar = document.getElementById('bar')
    const out = document.getElementById('out')
    out.textContent = 'running'
    try {
      const response = await fetchLongRunning('${url}' + path, {}, {
        signal: controller.signal,
        onProgress: ({ fraction, location }) => { bar.value = fraction ?? 0; document.getElementById('job').textContent = location }
      })
      out.textContent = response.status + ' ' + await response.text()
    } catch (error) {
      out.textContent = error.name
    }
  }
</script>`))
  await other.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => other.close())
  const otherUrl = `http://127.0.0.1:${(other.server.address() as { port: number }).port}`
  url = await example({ waitSeconds: 25 }, [otherUrl])
  const page = await browser.newPage()
  await page.goto(otherUrl)
  return page
}

async function start (page: Page, path: string): Promise<void> {
  await page.evaluate((path) => { void (window as unknown as { start: (path: string) => Promise<void> }).start(path) }, path)
}

t.test('the client in a page: the progress bar moves, then the result shows', async t => {
  const page = await clientPage()
  await start(page, '/payload?delay=4')
  await page.waitForFunction(() => (document.getElementById('bar') as HTMLProgressElement).value > 0, undefined, { timeout: 30_000 })
  const first = await page.$eval('#bar', bar => (bar as HTMLProgressElement).value)
  await page.waitForFunction((first) => (document.getElementById('bar') as HTMLProgressElement).value > first, first, { timeout: 30_000 })
  await page.waitForFunction(() => document.getElementById('out')?.textContent !== 'running', undefined, { timeout: 30_000 })
  t.equal(await page.textContent('#out'), '200 {"MESSAGE":"It took 4 seconds to generate this."}')
  t.ok(first > 0 && first < 1, `the bar moved: ${first}, then further`)
  await page.close()
})

t.test('the client in a page: Cancel rejects the call and cancels the job on the server', async t => {
  const page = await clientPage()
  await start(page, '/payload?delay=30')
  await page.waitForFunction(() => (document.getElementById('bar') as HTMLProgressElement).value > 0, undefined, { timeout: 30_000 })
  await page.click('#cancel')
  await page.waitForFunction(() => document.getElementById('out')?.textContent !== 'running', undefined, { timeout: 30_000 })
  t.equal(await page.textContent('#out'), 'AbortError')
  // The page sends its DELETE as it rejects; this request waits on the server until the job ends.
  const answer = await fetch(await page.textContent('#job') ?? '')
  t.equal(answer.status, 409)
  t.match(await answer.json(), { code: 'FST_LONG_RUNNING_JOB_CANCELLED' })
  await page.close()
})

t.test('the client in a page of another origin on npm run dev:aws with CORS_ORIGINS: 5 MiB results from S3, byte for byte, with the route\'s status and headers', async t => {
  const client = await clientBundle()
  const other = Fastify()
  other.get('/client.js', async (_request, reply) => await reply.type('text/javascript').send(client))
  other.get('/', async (_request, reply) => await reply.type('text/html').send('<!doctype html><title>results</title>'))
  await other.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => other.close())
  const otherUrl = `http://127.0.0.1:${(other.server.address() as { port: number }).port}`
  const start = childProcesses(t)
  const server = start('example/dev-aws.ts', { PORT: '0', HOST: '127.0.0.1', CORS_ORIGINS: otherUrl })
  const url = await listeningUrl(server)
  const page = await browser.newPage()
  await page.goto(otherUrl)
  const size = 5 * 1024 * 1024
  // In the page: the client fetches, the page checks every byte (no 5 MiB goes back to the test).
  const result = await page.evaluate(async ({ url, size }) => {
    const { fetchLongRunning } = await import('/client.js' as string) as typeof import('../../src/client/index.js')
    const bytes = await fetchLongRunning(`${url}/bytes?size=${size}&delay=1`)
    const got = new Uint8Array(await bytes.arrayBuffer())
    const sent = new Uint8Array(size)
    for (let i = 0; i < size; i++) sent[i] = (i * 31 + 7) & 255
    const echo = await fetchLongRunning(`${url}/echo?delay=1`, { method: 'POST', body: sent, headers: { 'content-type': 'application/octet-stream' } })
    const back = new Uint8Array(await echo.arrayBuffer())
    return {
      bytes: { status: bytes.status, type: bytes.headers.get('content-type'), length: got.length, exact: got.every((byte, i) => byte === i % 251) },
      echo: { status: echo.status, echo: echo.headers.get('x-echo'), type: echo.headers.get('content-type'), length: back.length, exact: back.every((byte, i) => byte === sent[i]) }
    }
  }, { url, size })
  t.same(result.bytes, { status: 200, type: 'application/octet-stream', length: size, exact: true }, 'GET /bytes: 5 MiB from S3')
  t.same(result.echo, { status: 201, echo: '1', type: 'application/octet-stream', length: size, exact: true }, 'POST /echo: the route\'s 201 and x-echo, 5 MiB from S3')
  await page.close()
  t.equal(await stopChild(server), 0)
})
