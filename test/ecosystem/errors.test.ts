import sensible from '@fastify/sensible'
import type { FastifyInstance, RouteHandlerMethod } from 'fastify'
import t from 'tap'
import { fetchLongRunning } from '../../src/client/index.js'
import longRunning from '../../src/index.js'
import { serve } from './serve.js'

// The plugin documents its own answers (202, 303; 409 and 422 on keyed routes) in the route's
// schema; those schemas must never change how the route's own answers with those codes are
// serialized (issue 25, point 1). Each handler runs twice: on a long-running route, and on its
// synchronous twin; the client gets the same status and the same bytes from both.
const handlers: Record<string, RouteHandlerMethod> = {
  conflict: async function (this: FastifyInstance) { throw this.httpErrors.conflict('item exists') },
  unprocessable: async () => { throw Object.assign(new Error('bad item'), { statusCode: 422, code: 'E_ITEM' }) },
  accepted: async (_request, reply) => await reply.code(202).send({ ticket: 5 }),
  lookalike: async (_request, reply) => await reply.code(202).send({ id: 'mine', status: 'pending', location: '/mine', extra: true })
}

t.test('a keyed route\'s own 409, 422 and 202 come back as its synchronous twin sends them', async t => {
  const { url } = await serve(t, async app => {
    await app.register(sensible)
    await app.register(longRunning, { waitSeconds: 5 })
    for (const [name, handler] of Object.entries(handlers)) {
      app.post(`/job/${name}`, { longRunning: true }, handler)
      app.post(`/sync/${name}`, handler)
    }
  })
  for (const name of Object.keys(handlers)) {
    const sync = await fetch(`${url}/sync/${name}`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
    const job = await fetch(`${url}/job/${name}`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'idempotency-key': `"${name}"` } })
    t.equal(job.status, sync.status, `${name}: status ${sync.status}`)
    t.equal(await job.text(), await sync.text(), `${name}: the same bytes`)
  }
})

t.test('the app\'s error handler shapes a long-running route\'s own 409 as it does a synchronous one', async t => {
  const { url } = await serve(t, async app => {
    await app.register(sensible)
    app.setErrorHandler<Error & { statusCode?: number }>(async (error, _request, reply) => await reply.code(error.statusCode ?? 500).send({ ok: false, problem: error.message }))
    await app.register(longRunning, { waitSeconds: 5 })
    app.post('/job/conflict', { longRunning: true }, handlers.conflict as RouteHandlerMethod)
    app.post('/sync/conflict', handlers.conflict as RouteHandlerMethod)
  })
  const sync = await fetch(`${url}/sync/conflict`, { method: 'POST' })
  const job = await fetch(`${url}/job/conflict`, { method: 'POST' })
  t.equal(job.status, 409)
  t.same(await job.json(), await sync.json())
})

t.test('the app\'s error handler shapes the plugin\'s own 404 and 409 on /async-response', async t => {
  const { url } = await serve(t, async app => {
    app.setErrorHandler<Error & { statusCode?: number, code?: string }>(async (error, _request, reply) =>
      await reply.code(error.statusCode ?? 500).send({ ok: false, problem: error.code, detail: error.message }))
    await app.register(longRunning, { waitSeconds: 5 })
    app.get('/quick', { longRunning: true }, async () => 'done')
  })
  const unknown = await fetch(`${url}/async-response/11111111-1111-4111-8111-111111111111`)
  t.equal(unknown.status, 404)
  t.same(await unknown.json(), { ok: false, problem: 'FST_LONG_RUNNING_NOT_FOUND', detail: 'No such job' })
  const accepted = await fetch(`${url}/quick`, { headers: { prefer: 'respond-async, wait=5' } })
  t.equal(await accepted.text(), 'done')
  const job = await fetch(`${url}/quick`, { headers: { prefer: 'respond-async' } })
  const location = url + (job.headers.get('location') ?? '')
  t.equal((await fetch(location, { headers: { prefer: 'wait=5' } })).status, 200)
  const finished = await fetch(location, { method: 'DELETE' })
  t.equal(finished.status, 409)
  t.match(await finished.json(), { ok: false, problem: 'FST_LONG_RUNNING_JOB_FINISHED' })
})

t.test('a route with a response schema of its own for 202: the plugin\'s 202s keep their fields, and the client follows the job', async t => {
  let release = (): void => {}
  const released = new Promise<void>(resolve => { release = resolve })
  const { url } = await serve(t, async app => {
    await app.register(longRunning, { waitSeconds: 5 })
    const schema = { response: { 202: { type: 'object', properties: { ticket: { type: 'string' } } } } }
    app.get('/slow', { longRunning: true, schema }, async () => { await released; return { done: true } })
  })
  const accepted = await fetch(`${url}/slow`, { headers: { prefer: 'respond-async' } })
  t.equal(accepted.status, 202)
  t.match(await accepted.json(), { id: /^[0-9a-f-]{36}$/, status: /pending|running/, location: /^\/async-response\// })
  const call = fetchLongRunning(`${url}/slow`, {}, { onProgress: release })
  const response = await call
  t.equal(response.status, 200)
  t.same(await response.json(), { done: true })
})

t.test('the app\'s error handler shapes the plugin\'s key errors and the errors it stores as a job\'s answer', async t => {
  let release = (): void => {}
  const released = new Promise<void>(resolve => { release = resolve })
  t.teardown(release)
  const { url } = await serve(t, async app => {
    app.setErrorHandler<Error & { statusCode?: number, code?: string }>(async (error, _request, reply) =>
      await reply.code(error.statusCode ?? 500).send({ ok: false, problem: error.code, detail: error.message }))
    await app.register(longRunning, { waitSeconds: 5 })
    app.post('/pay', { longRunning: { idempotency: { strict: true } } }, async () => { await released; return 'paid' })
    app.get('/stuck', { longRunning: { timeoutSeconds: 1 } }, async () => await new Promise(() => {}))
    app.get('/huge', { longRunning: true }, async () => Buffer.alloc(7 * 1024 * 1024))
    app.get('/slow', { longRunning: true }, async () => { await released; return 'late' })
  })
  const shaped = async (response: Response, status: number, problem: string): Promise<void> => {
    t.equal(response.status, status, problem)
    t.match(await response.json(), { ok: false, problem, detail: /\w/ }, `${problem} in the app's shape`)
  }
  const pay = async (body: string, key = '"k1"'): Promise<Response> =>
    await fetch(`${url}/pay`, { method: 'POST', body, headers: { 'idempotency-key': key, prefer: 'respond-async' } })
  t.equal((await pay('10')).status, 202)
  const conflict = await pay('10')
  await shaped(conflict, 409, 'FST_LONG_RUNNING_IDEMPOTENCY_CONFLICT')
  t.match(conflict.headers.get('location'), /^\/async-response\//, 'the conflict still names the job')
  await shaped(await pay('11'), 422, 'FST_LONG_RUNNING_IDEMPOTENCY_KEY_REUSED')
  await shaped(await pay('10', 'two keys, one header'), 400, 'FST_LONG_RUNNING_IDEMPOTENCY_KEY_INVALID')
  await shaped(await fetch(`${url}/stuck`, { headers: { prefer: 'wait=5' } }), 504, 'FST_LONG_RUNNING_JOB_TIMEOUT')
  await shaped(await fetch(`${url}/huge`, { headers: { prefer: 'wait=5' } }), 502, 'FST_LONG_RUNNING_RESPONSE_TOO_LARGE')
  const slow = await fetch(`${url}/slow`, { headers: { prefer: 'respond-async' } })
  const location = url + (slow.headers.get('location') ?? '')
  t.equal((await fetch(location, { method: 'DELETE' })).status, 204)
  await shaped(await fetch(location), 409, 'FST_LONG_RUNNING_JOB_CANCELLED')
})

t.test('a route\'s own answer that looks like a stored error of the plugin is sent as the route gave it', async t => {
  const lookalike = { statusCode: 504, code: 'FST_LONG_RUNNING_JOB_TIMEOUT', error: 'Gateway Timeout', message: 'mine' }
  const { url } = await serve(t, async app => {
    app.setErrorHandler(async (_error, _request, reply) => await reply.code(500).send('shaped'))
    await app.register(longRunning, { waitSeconds: 5 })
    app.get('/own', { longRunning: true }, async (_request, reply) => await reply.code(504).type('application/json').send(JSON.stringify({ ...lookalike, extra: 1 })))
  })
  const own = await fetch(`${url}/own`)
  t.equal(own.status, 504)
  t.same(await own.json(), { ...lookalike, extra: 1 })
})
