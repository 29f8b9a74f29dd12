import { fastifySSE as sse } from '@fastify/sse'
import websocket from '@fastify/websocket'
import Fastify from 'fastify'
import { Readable } from 'node:stream'
import t from 'tap'
import longRunning from '../../src/index.js'
import { serve } from './serve.js'

// Answers that never end can't be jobs (issue 25, point 8): a job's response is stored whole
// and handed over once. What the route's options say is refused at startup; the rest ends the
// job at the first byte that shows it (an event stream), or at the first byte beyond what a
// result may hold, instead of redirecting the client until `timeoutSeconds`.

const ENDLESS = 'FST_LONG_RUNNING_ENDLESS_RESPONSE'

t.test('a websocket route or an SSE-only route marked long-running is refused at startup, naming the route', async t => {
  const ws = Fastify()
  await ws.register(websocket)
  await ws.register(longRunning)
  t.throws(() => ws.get('/ws', { websocket: true, longRunning: true }, () => {}), { code: ENDLESS, message: /GET \/ws is a websocket route/ })
  t.throws(() => ws.route({ method: 'GET', url: '/live', longRunning: true, handler: async () => ({}), wsHandler: () => {} }), { code: ENDLESS, message: /GET \/live is a websocket route \(wsHandler\)/ })
  await ws.close()

  const events = Fastify()
  await events.register(sse)
  await events.register(longRunning)
  t.throws(() => events.get('/events', { sse: 'only', longRunning: true }, async () => {}), { code: ENDLESS, message: /GET \/events is an event-stream route/ })
  t.throws(() => events.get('/kinds', { sse: { kind: 'only' }, longRunning: true }, async () => {}), { code: ENDLESS })
  await events.close()
})

t.test('answers that never end end the job within one wait, with a clear error, and the stream is cut', async t => {
  const cut: string[] = []
  const forever = (name: string, chunk: string): Readable => {
    // A source that waits for its next event, as a real one does (a synchronous one starves the loop).
    const stream = new Readable({ read () { setImmediate(() => this.push(chunk)) } })
    stream.on('close', () => cut.push(name))
    return stream
  }
  const { url } = await serve(t, async app => {
    await app.register(sse)
    await app.register(longRunning, { waitSeconds: 10 })
    app.get('/sse', { sse: true, longRunning: true }, async (_request, reply) => {
      reply.sse.onClose(() => cut.push('sse'))
      for (let i = 0; ; i++) await reply.sse.send({ data: String(i) })
    })
    app.get('/stream', { longRunning: true }, async (_request, reply) => await reply.type('text/event-stream').send(forever('stream', 'data: 1\n\n')))
    app.get('/ndjson', { longRunning: true }, async (_request, reply) => await reply.type('application/x-ndjson').send(forever('ndjson', `${JSON.stringify({ row: 'x'.repeat(1000) })}\n`)))
    app.get('/hijack', { longRunning: true }, async (_request, reply) => {
      reply.hijack()
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream' })
    })
  })
  const get = async (path: string, accept = '*/*'): Promise<{ status: number, body: { code?: string, message?: string } }> => {
    const response = await fetch(url + path, { headers: { accept, prefer: 'wait=10' } })
    return { status: response.status, body: await response.json() as { code?: string } }
  }
  t.match(await get('/sse', 'text/event-stream'), { status: 500, body: { code: ENDLESS, message: /event stream/ } }, '@fastify/sse')
  t.match(await get('/stream'), { status: 500, body: { code: ENDLESS } }, 'a stream sent as text/event-stream')
  t.match(await get('/hijack'), { status: 500, body: { code: ENDLESS, message: /reply\.hijack\(\)/ } }, 'reply.hijack()')
  t.match(await get('/ndjson'), { status: 502, body: { code: 'FST_LONG_RUNNING_RESPONSE_TOO_LARGE' } }, 'any other endless body, at its first byte past 6 MiB')
  t.same(cut.sort(), ['ndjson', 'sse', 'stream'], 'every stream was cut')
})

t.test('a stream that fails midway ends its job once with 502; a timeout cuts the route\'s stream', async t => {
  let runs = 0
  const cut: string[] = []
  const { url } = await serve(t, async app => {
    await app.register(longRunning, { waitSeconds: 10, leaseSeconds: 3 })
    app.get('/export', { longRunning: true }, async (_request, reply) => {
      runs++
      let rows = 0
      return await reply.type('text/csv').send(new Readable({ read () { setImmediate(() => rows++ < 3 ? this.push(`row ${rows}\n`) : this.destroy(new Error('database lost'))) } }))
    })
    app.get('/slow', { longRunning: { timeoutSeconds: 1 } }, async (_request, reply) => {
      const stream = new Readable({ read () { setTimeout(() => this.push('x'), 50) } })
      stream.on('close', () => cut.push('slow'))
      return await reply.type('text/plain').send(stream)
    })
    app.get('/camera', { longRunning: true }, async (_request, reply) => await reply.type('multipart/x-mixed-replace; boundary=frame').send(new Readable({ read () { setImmediate(() => this.push('--frame\r\n')) } })))
  })
  const get = async (path: string): Promise<{ status: number, body: { code?: string, message?: string } }> => {
    const response = await fetch(url + path, { headers: { prefer: 'wait=10' } })
    return { status: response.status, body: await response.json() as { code?: string } }
  }
  t.match(await get('/export'), { status: 502, body: { code: 'FST_LONG_RUNNING_RESPONSE_FAILED', message: /failed while its body was written/ } })
  t.equal(runs, 1, 'the handler ran once: a failing stream is no crash to retry')
  t.match(await get('/slow'), { status: 504, body: { code: 'FST_LONG_RUNNING_JOB_TIMEOUT' } })
  t.same(cut, ['slow'], 'the timed-out route\'s stream was cut')
  t.match(await get('/camera'), { status: 500, body: { code: ENDLESS, message: /multipart\/x-mixed-replace/ } })
})
