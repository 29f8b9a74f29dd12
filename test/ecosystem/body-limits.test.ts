import { request as httpRequest } from 'node:http'
import multipart from '@fastify/multipart'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import longRunning, { memoryStore } from '../../src/index.js'
import { serve } from './serve.js'

// A long-running route keeps its request's body for the job: never more of it than the route's
// bodyLimit, whatever parser reads it and whenever (review 3, point 32).
const MiB = 1024 * 1024

interface Answer { status: number, body: string, sentAll: boolean }

/**
 * POSTs `total` bytes in 64 KiB chunks, chunked (no length declared: nothing is refused for its
 * header), as fast as the server takes them; resolves with the answer, and whether the whole
 * body had gone out by then. `whenDone` hears when the client got its answer or sent it all.
 */
async function post (url: string, type: string, total: number, whenDone: () => void = () => {}): Promise<Answer> {
  let sent = 0
  let settled = false
  return await new Promise<Answer>((resolve, reject) => {
    const request = httpRequest(url, { method: 'POST', headers: { 'content-type': type } }, response => {
      const sentAll = sent >= total
      settled = true
      whenDone()
      let body = ''
      response.on('data', (chunk: Buffer) => { body += chunk.toString() })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, sentAll }))
      response.on('error', reject)
    })
    // Cut off once answered: the server closes the connection after a 413.
    request.on('error', () => { if (!settled) reject(new Error('no answer')) })
    const chunk = Buffer.alloc(64 * 1024, 'a')
    const write = (): void => {
      while (sent < total) {
        // Answered: the rest is never sent.
        if (settled) return
        const piece = chunk.subarray(0, Math.min(chunk.length, total - sent))
        sent += piece.length
        if (!request.write(piece)) {
          request.once('drain', write)
          return
        }
      }
      if (sent >= total) request.end(() => whenDone())
    }
    write()
  })
}

t.test('without a bucket, a raw-stream or multipart body past the route\'s bodyLimit is refused at once while its hooks run, and never kept past the limit', async t => {
  let release: () => void = () => {}
  let released = Promise.resolve()
  let hookRuns = 0
  const { url } = await serve(t, async (app: FastifyInstance) => {
    await app.register(multipart)
    // Both copies of a body count against the budget as they arrive: 64 MiB piling up while the
    // hook runs could never fit in 8 MiB (503), 1 MiB kept does.
    await app.register(longRunning, { store: memoryStore({ maxBytes: 8 * MiB }), waitSeconds: 5 })
    app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload))
    // A slow authorisation lookup, say: held until the client has its answer (or sent everything).
    const preHandler = async (): Promise<void> => { hookRuns += 1; await released }
    app.post('/raw', { longRunning: true, preHandler }, async () => ({ ran: true }))
    app.post('/upload', { longRunning: true, preHandler }, async () => ({ ran: true }))
  })
  for (const [path, type] of [['/raw', 'application/octet-stream'], ['/upload', 'multipart/form-data; boundary=x']] as const) {
    released = new Promise<void>(resolve => { release = resolve })
    const answer = await post(url + path, type, 64 * MiB, release)
    t.equal(answer.status, 413, `${path}: 413`)
    t.match(JSON.parse(answer.body), { code: 'FST_LONG_RUNNING_BODY_TOO_LARGE', message: /bodyLimit of 1048576 bytes/ })
    t.notOk(answer.sentAll, `${path}: answered while the client was still sending, the hook still running`)
  }
  t.equal(hookRuns, 2)
})

t.test('a body Fastify parses, past bodyLimit as it streams: the long-running route and its synchronous twin refuse it alike, with Fastify\'s own 413', async t => {
  const limit = 256 * 1024
  const { url } = await serve(t, async (app: FastifyInstance) => {
    await app.register(longRunning, { waitSeconds: 5 })
    app.addContentTypeParser('text/plain', { parseAs: 'buffer' }, (_request, body, done) => done(null, body))
    const handler = async (request: { body: unknown }): Promise<unknown> => ({ bytes: (request.body as Buffer).length })
    app.post('/sync', { bodyLimit: limit }, handler)
    app.post('/job', { bodyLimit: limit, longRunning: true }, handler)
  })
  for (const [size, status] of [[limit, 200], [limit + 1, 413], [8 * MiB, 413]] as const) {
    const sync = await post(`${url}/sync`, 'text/plain', size)
    const job = await post(`${url}/job`, 'text/plain', size)
    t.equal(sync.status, status, `${size} bytes: ${status}`)
    t.equal(job.status, sync.status, `${size} bytes: the same status`)
    t.same(JSON.parse(job.body), JSON.parse(sync.body), `${size} bytes: the same body`)
  }
})
