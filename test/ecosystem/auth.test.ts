import jwt from '@fastify/jwt'
import rateLimit from '@fastify/rate-limit'
import type { FastifyRequest } from 'fastify'
import t from 'tap'
import longRunning from '../../src/index.js'
import { curl, serve } from './serve.js'

declare module 'fastify' {
  interface FastifyRequest { account?: { id: string } }
}

t.test('an auth hook registered before the plugin skips job runs; carry brings the user into the job', async t => {
  const seen: unknown[] = []
  const { url } = await serve(t, async (app) => {
    app.decorateRequest('account', undefined)
    // Before the plugin: `request.longRunning` is resolved by whichever hook asks first.
    app.addHook('onRequest', async (request, reply) => {
      if (request.longRunning !== null) return // authenticated when the job was accepted
      if (request.headers.authorization !== 'Bearer alice-token') return await reply.code(401).send({ error: 'who?' })
      request.account = { id: 'alice' }
    })
    await app.register(longRunning, { waitSeconds: 0, dropHeaders: ['authorization'], carry: (request) => ({ account: request.account ?? null }) })
    app.get('/me', { longRunning: true }, async (request) => {
      seen.push(request.headers.authorization)
      return { account: request.account, job: request.longRunning?.id !== undefined }
    })
  })
  t.equal((await fetch(`${url}/me`)).status, 401)
  const response = await fetch(`${url}/me`, { headers: { authorization: 'Bearer alice-token' } })
  t.equal(response.status, 200)
  t.same(await response.json(), { account: { id: 'alice' }, job: true })
  t.same(seen, [undefined], 'the credential never reached the job')
})

t.test('@fastify/jwt in a child plugin, bindTo verifying the token itself: the owner reads, others get 404', async t => {
  const { app, url } = await serve(t, async (app) => {
    await app.register(jwt, { secret: 'a-secret-of-at-least-32-characters!!' })
    const bindTo = async (request: FastifyRequest): Promise<string | undefined> => {
      try {
        return (await request.jwtVerify<{ sub: string }>()).sub
      } catch {
        return undefined
      }
    }
    await app.register(longRunning, { waitSeconds: 0, bindTo })
    await app.register(async (secured) => {
      secured.addHook('onRequest', async (request) => { if (request.longRunning === null) await request.jwtVerify() })
      secured.get('/report', { longRunning: true }, async () => ({ report: 'ready' }))
    })
  })
  const token = (sub: string): string => app.jwt.sign({ sub })
  const auth = (sub: string) => ({ authorization: `Bearer ${token(sub)}` })
  t.equal((await fetch(`${url}/report`)).status, 401)
  const accepted = await fetch(`${url}/report`, { headers: { ...auth('ann'), prefer: 'respond-async' } })
  t.equal(accepted.status, 202)
  const location = url + (accepted.headers.get('location') ?? '')
  const owner = await fetch(location, { headers: { ...auth('ann'), prefer: 'wait=10' } })
  t.equal(owner.status, 200, 'the owner gets her result although auth lives in a child plugin')
  t.same(await owner.json(), { report: 'ready' })
  t.equal((await fetch(location, { headers: auth('bob') })).status, 404, 'another user: the same 404')
  t.equal((await fetch(location)).status, 404, 'no token: the same 404')
})

t.test('@fastify/rate-limit: a job run spends no client\'s budget and shares no bucket', async t => {
  const handled: string[] = []
  const { url } = await serve(t, async (app) => {
    await app.register(rateLimit, {
      max: 1,
      timeWindow: '1 minute',
      keyGenerator: (request) => String(request.headers['x-client'] ?? request.ip),
      // A job run was counted when its request came in.
      allowList: (request) => request.longRunning !== null
    })
    await app.register(longRunning, { waitSeconds: 5 })
    app.get('/slow', { longRunning: true }, async (request) => {
      handled.push(String(request.headers['x-client']))
      return { client: request.headers['x-client'] }
    })
  })
  const clients = ['a', 'b', 'c', 'd', 'e', 'f']
  const responses = await Promise.all(clients.map(async client => await fetch(`${url}/slow`, { headers: { 'x-client': client } })))
  t.same(responses.map(response => response.status), clients.map(() => 200), 'each client\'s one request succeeds')
  t.same(handled.sort(), clients)
  t.equal((await fetch(`${url}/slow`, { headers: { 'x-client': 'a' } })).status, 429, 'the limit still holds for clients')
})

t.test('a preHandler guard that must run once per request skips job runs', async t => {
  const tokens = new Set(['once'])
  const { url } = await serve(t, async (app) => {
    await app.register(longRunning, { waitSeconds: 0 })
    app.post('/spend', {
      longRunning: true,
      preHandler: async (request, reply) => {
        if (request.longRunning !== null) return // checked when the job was accepted
        const token = String(request.headers['x-token'])
        if (!tokens.delete(token)) return await reply.code(403).send({ error: 'used' })
      }
    }, async () => ({ spent: true }))
  })
  const first = await curl(['-L', '-X', 'POST', '-H', 'x-token: once', `${url}/spend`])
  t.equal(first.status, 200)
  t.equal(first.body, '{"spent":true}')
  t.equal((await curl(['-X', 'POST', '-H', 'x-token: once', `${url}/spend`])).status, 403)
})
