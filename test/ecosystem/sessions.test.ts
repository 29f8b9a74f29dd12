import cookie from '@fastify/cookie'
import session from '@fastify/session'
import secureSession from '@fastify/secure-session'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import t from 'tap'
import longRunning from '../../src/index.js'
import { curl, serve } from './serve.js'

// Cookie sessions with the documented pattern (issue 25, point 3): the `cookie` header stays in
// the job (the session is what the route reads), `bindTo` ties the result to the session's
// user, and the answer that hands a result over carries one `Set-Cookie` per cookie, the one
// the route set as the job, as the synchronous route gives. Each route runs twice: as a job
// (`/job/...`) and synchronously (`/sync/...`); a small cookie jar plays the browser.

declare module 'fastify' {
  interface Session { count: number, user: string, done: boolean, seen: boolean }
}

const SECRET = 'a secret with at least 32 characters, for tests'

/** A browser's cookie jar: the last `Set-Cookie` of each name wins, as in a browser. */
class Jar {
  readonly #cookies = new Map<string, string>()
  take (response: Response): string[] {
    const lines = response.headers.getSetCookie()
    for (const line of lines) {
      const [pair = ''] = line.split(';')
      const at = pair.indexOf('=')
      this.#cookies.set(pair.slice(0, at), pair.slice(at + 1))
    }
    return lines
  }

  get header (): string { return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ') }
}

/** Names of the cookies in `lines`, in order: a name twice is the bug this test is about. */
const names = (lines: string[]): string[] => lines.map(line => line.slice(0, line.indexOf('=')))

type Route = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>

function twins (app: FastifyInstance, method: 'GET' | 'POST', path: string, handler: Route): void {
  app.route({ method, url: `/job${path}`, longRunning: true, handler })
  app.route({ method, url: `/sync${path}`, handler })
}

/** The job's answer fetched as the client does with `Prefer: respond-async`: the 202, then its Location. */
async function viaLocation (url: string, path: string, jar: Jar, method = 'GET'): Promise<Response> {
  const accepted = await fetch(url + path, { method, headers: { cookie: jar.header, prefer: 'respond-async' } })
  if (accepted.status !== 202) return accepted
  jar.take(accepted)
  return await fetch(url + (accepted.headers.get('location') ?? ''), { headers: { cookie: jar.header, prefer: 'wait=5' } })
}

for (const rolling of [true, false]) {
  t.test(`@fastify/session (rolling: ${String(rolling)}): a job reads and writes the session as the synchronous route does, one session cookie per answer`, async t => {
    const { url } = await serve(t, async app => {
      await app.register(cookie)
      await app.register(session, { secret: SECRET, rolling, cookie: { secure: false } })
      await app.register(longRunning, {
        waitSeconds: 5,
        dropHeaders: ['authorization'],
        bindTo: request => request.session.get('user') as string | undefined
      })
      twins(app, 'GET', '/count', async request => {
        const count = (request.session.get('count') as number | undefined ?? 0) + 1
        request.session.set('count', count)
        return { count }
      })
      twins(app, 'POST', '/login', async request => {
        await request.session.regenerate()
        request.session.set('user', 'ada')
        return { user: 'ada' }
      })
      app.get('/whoami', async request => ({ user: request.session.get('user') ?? null, count: request.session.get('count') ?? 0 }))
    })
    const jar = new Jar()
    const sync = await fetch(`${url}/sync/count`, { headers: { cookie: jar.header } })
    t.same(names(jar.take(sync)), ['sessionId'], 'the synchronous route: one session cookie')
    t.same(await sync.json(), { count: 1 })

    const direct = await fetch(`${url}/job/count`, { headers: { cookie: jar.header } })
    t.same(names(jar.take(direct)), ['sessionId'], 'a job answered within the wait: one session cookie')
    t.same(await direct.json(), { count: 2 })

    const fetched = await viaLocation(url, '/job/count', jar)
    t.same(names(jar.take(fetched)), ['sessionId'], 'a job fetched at its Location: one session cookie')
    t.same(await fetched.json(), { count: 3 })

    const login = await viaLocation(url, '/job/login', jar, 'POST')
    t.same(names(jar.take(login)), ['sessionId'], 'a login in a job: the new session\'s cookie, once')
    t.same(await login.json(), { user: 'ada' })
    t.same(await (await fetch(`${url}/whoami`, { headers: { cookie: jar.header } })).json(), { user: 'ada', count: 0 }, 'the browser holds the session the job created')

    const after = await viaLocation(url, '/job/count', jar)
    t.same(await after.json(), { count: 1 }, 'bound to ada, read by ada')
    t.equal((await fetch(url + '/async-response/' + '11111111-1111-4111-8111-111111111111', { headers: { cookie: jar.header } })).status, 404)
  })
}

t.test('@fastify/secure-session: the session the job wrote reaches the browser, not the one the fetching request read', async t => {
  const { url } = await serve(t, async app => {
    await app.register(secureSession, { secret: SECRET, salt: 'mq9hDxBVDbspDR6n', cookie: { path: '/' } })
    await app.register(longRunning, { waitSeconds: 5 })
    twins(app, 'GET', '/count', async request => {
      const count = (request.session.get('count') as number | undefined ?? 0) + 1
      request.session.set('count', count)
      return { count }
    })
    // A hook of the app that touches the session on every request, the fetching one included.
    app.addHook('onRequest', async request => { request.session.set('seen', true) })
  })
  const jar = new Jar()
  t.same(names(jar.take(await fetch(`${url}/sync/count`))), ['session'])
  const fetched = await viaLocation(url, '/job/count', jar)
  t.same(names(jar.take(fetched)), ['session'], 'one session cookie: the job\'s')
  t.same(await fetched.json(), { count: 2 })
  const sync = await fetch(`${url}/sync/count`, { headers: { cookie: jar.header } })
  t.same(await sync.json(), { count: 3 }, 'the browser kept the count the job wrote')
})

t.test('curl -L with a cookie jar through redirects: the session survives the hops', async t => {
  let release = (): void => {}
  const released = new Promise<void>(resolve => { release = resolve })
  const { url } = await serve(t, async app => {
    await app.register(cookie)
    await app.register(session, { secret: SECRET, cookie: { secure: false } })
    await app.register(longRunning, { waitSeconds: 1 })
    app.get('/slow', { longRunning: true }, async request => {
      await released
      request.session.set('done', true)
      return 'slow done'
    })
    app.get('/read', async request => ({ done: request.session.get('done') ?? false }))
    // The job finishes once the first 303 went out, so the answer comes on a hop.
    app.addHook('onResponse', async (_request, reply) => { if (reply.statusCode === 303) release() })
  })
  const jar = `${t.testdir()}/jar`
  const slow = await curl(['-L', '-b', jar, '-c', jar, `${url}/slow`])
  t.equal(slow.body, 'slow done')
  t.equal(slow.headers.match(/^set-cookie: sessionId=/gim)?.length, 1, 'the final answer sets the session once')
  const read = await curl(['-b', jar, `${url}/read`])
  t.same(JSON.parse(read.body), { done: true })
})

t.test('@fastify/session: a logout run as a job ends the session for good, as it does synchronously', async t => {
  const { url } = await serve(t, async app => {
    await app.register(cookie)
    await app.register(session, { secret: SECRET, cookie: { secure: false } })
    await app.register(longRunning, { waitSeconds: 5 })
    app.post('/login', async request => { request.session.set('user', 'ada'); return {} })
    twins(app, 'POST', '/logout', async request => { await request.session.destroy(); return { out: true } })
    app.get('/whoami', async request => ({ user: request.session.get('user') ?? null }))
  })
  for (const path of ['/sync/logout', '/job/logout']) {
    const jar = new Jar()
    jar.take(await fetch(`${url}/login`, { method: 'POST' }))
    const stolen = jar.header
    const out = await viaLocation(url, path, jar, 'POST')
    t.same(await out.json(), { out: true })
    t.same(out.headers.getSetCookie(), [], `${path}: no session cookie set again`)
    t.same(await (await fetch(`${url}/whoami`, { headers: { cookie: stolen } })).json(), { user: null }, `${path}: the old session id is dead`)
  }
})
