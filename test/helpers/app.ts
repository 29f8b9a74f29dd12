import { once } from 'node:events'
import Fastify, { type FastifyInstance } from 'fastify'
import longRunning, { type LongRunningOptions } from '../../src/index.js'
import { Gates } from './gate.js'

/** A test app: long-running routes that wait on gates the test opens, and counters. */
export interface TestApp {
  app: FastifyInstance
  gates: Gates
  runs: Map<string, number>
  /** Resolves once handler `name` has started `count` times (its runs are counted as they start). */
  ran (name: string, count?: number): Promise<void>
  /** Base URL once listening (`listen()`). */
  url: string
  listen (): Promise<string>
}

/**
 * Routes:
 * - `GET|POST|PUT /job/:name` long-running: waits for gate `name` (unless `?open=1`, or `?hops=n`:
 *   until a client asks for its result with `?hop=n`), then answers
 *   201 with the request body's bytes, its content type, two cookies and `x-job-name`.
 * - `GET /boom/:name` long-running: waits for its gate, then throws a 418 error.
 * - `GET /hops/:n` long-running: waits until a client asks for its result with `?hop=n`.
 * - `GET /plain` ordinary.
 */
export async function buildTestApp (
  options: LongRunningOptions = {},
  routes?: (app: FastifyInstance, gates: Gates, count: (name: string) => void) => void
): Promise<TestApp> {
  const app = Fastify({ logger: process.env.TEST_LOG === undefined ? false : { level: 'debug', file: process.env.TEST_LOG } })
  const gates = new Gates()
  const runs = new Map<string, number>()
  const waiting = new Set<{ name: string, count: number, resolve: () => void }>()
  await app.register(longRunning, options)
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body))

  const count = (name: string): void => {
    runs.set(name, (runs.get(name) ?? 0) + 1)
    for (const waiter of waiting) {
      if (waiter.name === name && (runs.get(name) ?? 0) >= waiter.count) {
        waiting.delete(waiter)
        waiter.resolve()
      }
    }
  }
  app.route<{ Params: { name: string }, Querystring: { open?: string, hops?: string } }>({
    method: ['GET', 'POST', 'PUT'],
    url: '/job/:name',
    longRunning: true,
    handler: async (request, reply) => {
      count(request.params.name)
      // `?hops=n`: finish once a client asks for the result with `?hop=n` (see the hook below).
      if (request.query.hops !== undefined) await gates.get(`${request.longRunning?.id}@${request.query.hops}`).opened
      else if (request.query.open === undefined) await gates.get(request.params.name).opened
      const body = request.body
      reply.code(201)
        .header('x-job-name', request.params.name)
        .header('x-job-id', request.longRunning?.id ?? 'none')
        .header('set-cookie', ['a=1; Path=/', 'b=2; Path=/'])
      if (Buffer.isBuffer(body)) return await reply.header('content-type', request.headers['content-type'] ?? 'application/octet-stream').send(body)
      if (typeof body === 'string') return await reply.type(request.headers['content-type'] ?? 'text/plain').send(body)
      return { name: request.params.name, body: body ?? null }
    }
  })
  app.get<{ Params: { name: string } }>('/boom/:name', { longRunning: true }, async (request) => {
    count(request.params.name)
    await gates.get(request.params.name).opened
    throw Object.assign(new Error('teapot trouble'), { statusCode: 418 })
  })
  app.get<{ Params: { n: string } }>('/hops/:n', { longRunning: true }, async (request) => {
    count('hops')
    await gates.get(`${request.longRunning?.id}@${request.params.n}`).opened
    return { hops: Number(request.params.n) }
  })
  app.addHook('onRequest', async (request) => {
    const match = /^\/async-response\/([^?]+)\?hop=(\d+)/.exec(request.url)
    if (match !== null) gates.open(`${match[1]}@${match[2]}`)
  })
  app.get('/plain', async () => ({ plain: true }))
  routes?.(app, gates, count)

  const test: TestApp = {
    app,
    gates,
    runs,
    async ran (name, count = 1) {
      if ((runs.get(name) ?? 0) >= count) return
      await new Promise<void>(resolve => waiting.add({ name, count, resolve }))
    },
    url: '',
    async listen () {
      await app.listen({ port: 0, host: '127.0.0.1' })
      const address = app.server.address()
      if (address === null || typeof address === 'string') throw new Error('no port')
      test.url = `http://127.0.0.1:${address.port}`
      return test.url
    }
  }
  return test
}

/** Closes the app, opening every gate first so that no job is left hanging. */
export async function closeTestApp (test: TestApp): Promise<void> {
  test.gates.openAll()
  await test.app.close()
}

/** For a handler that must outlast its signal: resolves with the signal's reason once it aborts. */
export async function untilAborted (signal: AbortSignal | undefined): Promise<unknown> {
  if (signal === undefined) throw new Error('not a job run')
  if (!signal.aborted) await once(signal, 'abort')
  return signal.reason
}
