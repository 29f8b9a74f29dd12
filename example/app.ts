import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import compress from '@fastify/compress'
import cors from '@fastify/cors'
import multipart from '@fastify/multipart'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import longRunning, { type LongRunningOptions } from '../src/index.js'

/** Seconds to sleep: 0 to 900, as written by the client (kept verbatim for the message). */
const DELAY = {
  type: 'object',
  properties: {
    delay: { type: 'string', pattern: '^(?:(?:[0-9]|[1-9][0-9]|[1-8][0-9]{2})(?:\\.[0-9]+)?|900(?:\\.0+)?)$', default: '60' }
  }
} as const

// Bodies up to 6 MiB travel in the job's message or record; with a results bucket larger ones
// stream there (and back), and the routes take up to 1 GiB.
const INLINE_BODY_LIMIT = 6 * 1024 * 1024
const BUCKET_BODY_LIMIT = 1024 ** 3
// Bytes 0 to 250: /bytes repeats them.
const PERIOD_251 = Buffer.from(Array.from({ length: 251 }, (_, i) => i))
/** The most files, and fields, one `POST /upload` may carry. */
const UPLOAD_PARTS = 16

// Runs of long-running handlers in this process, whichever app instance ran them: under
// `npm run dev:aws` the HTTP app and the worker Lambda's app share one process.
let executions = 0
// Of those, the ones still running (a cancelled job's handler stops at once: its signal aborts the wait).
let running = 0

/**
 * The example app: five long-running routes and two ordinary ones. Backends come from
 * `options` (see `example/backends.ts`); with none, jobs run in this process. `corsOrigins`:
 * the origins whose pages may call it.
 */
export async function buildApp (
  options: LongRunningOptions = {},
  server: FastifyServerOptions = {},
  corsOrigins: string[] = []
): Promise<FastifyInstance> {
  const app = Fastify(server)
  // CORS first, so that the plugin's 303, 202 and 404 carry its headers too.
  if (corsOrigins.length > 0) await app.register(cors, { origin: corsOrigins, methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'], exposedHeaders: ['location', 'retry-after', 'preference-applied'] })
  // Responses compressed for clients that accept it: results too (each fetch gets its own encoding).
  await app.register(compress)
  await app.register(longRunning, options)
  const bodyLimit = options.results === undefined ? INLINE_BODY_LIMIT : BUCKET_BODY_LIMIT
  // Multipart's own limits decide what `POST /upload` accepts, synchronously or as a job.
  await app.register(multipart, { limits: { fileSize: bodyLimit, files: UPLOAD_PARTS, fields: UPLOAD_PARTS } })

  const wait = async (seconds: string, signal: AbortSignal | undefined): Promise<void> => {
    executions += 1
    running += 1
    try {
      await sleep(Number(seconds) * 1000, undefined, signal === undefined ? {} : { signal })
    } finally {
      running -= 1
    }
  }

  app.get<{ Querystring: { delay: string } }>('/payload', { longRunning: true, schema: { querystring: DELAY } }, async (request) => {
    const job = request.longRunning
    const total = Number(request.query.delay) * 1000
    const started = Date.now()
    // Progress (elapsed / delay) at least once a second, shown in the 202 status body and the waiting page.
    const reporter = setInterval(() => {
      const elapsed = Math.min(total, Date.now() - started)
      job?.progress(total === 0 ? 1 : elapsed / total, `${Math.floor(elapsed / 1000)} of ${request.query.delay} seconds`)
    }, 500)
    try {
      await wait(request.query.delay, job?.signal)
    } finally {
      clearInterval(reporter)
    }
    return { MESSAGE: `It took ${request.query.delay} seconds to generate this.` }
  })

  // N bytes, byte i = i % 251: large, incompressible-looking results of an exact, checkable shape.
  app.get<{ Querystring: { size: number, delay: string } }>('/bytes', {
    longRunning: true,
    schema: {
      querystring: {
        type: 'object',
        required: ['size'],
        properties: { size: { type: 'integer', minimum: 0, maximum: 67_108_864 }, delay: { ...DELAY.properties.delay, default: '0' } }
      }
    }
  }, async (request, reply) => {
    await wait(request.query.delay, request.longRunning?.signal)
    // One period repeated natively: a byte-by-byte loop costs a third of a second per 50 MiB.
    const body = Buffer.alloc(request.query.size, PERIOD_251)
    return await reply.type('application/octet-stream').send(body)
  })

  app.get<{ Querystring: { delay: string } }>('/fail', { longRunning: true, schema: { querystring: { ...DELAY, properties: { delay: { ...DELAY.properties.delay, default: '0' } } } } }, async (request) => {
    await wait(request.query.delay, request.longRunning?.signal)
    throw new Error('boom')
  })

  // Every part read with request.parts(): files hashed as they stream (never held whole).
  app.post<{ Querystring: { delay: string } }>('/upload', {
    longRunning: true,
    // Without a bucket the plugin keeps the whole upload for the job: up to this.
    bodyLimit,
    schema: { querystring: { ...DELAY, properties: { delay: { ...DELAY.properties.delay, default: '0' } } } }
  }, async (request) => {
    const files: Array<{ field: string, filename: string, bytes: number, sha256: string }> = []
    const fields: Record<string, string> = {}
    for await (const part of request.parts()) {
      if (part.type === 'field') {
        fields[part.fieldname] = String(part.value)
        continue
      }
      const hash = createHash('sha256')
      let bytes = 0
      for await (const chunk of part.file as AsyncIterable<Buffer>) {
        hash.update(chunk)
        bytes += chunk.length
      }
      // What toBuffer() would throw: a file cut at `fileSize` is refused, not hashed short.
      if (part.file.truncated) throw new app.multipartErrors.RequestFileTooLargeError()
      files.push({ field: part.fieldname, filename: part.filename, bytes, sha256: hash.digest('hex') })
    }
    await wait(request.query.delay, request.longRunning?.signal)
    return { files, fields }
  })

  // Echo takes any content type as raw bytes, so it can hand back exactly what it received.
  await app.register(async (raw) => {
    raw.removeAllContentTypeParsers()
    raw.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_request, body, done) => done(null, body))
    raw.post<{ Querystring: { delay: string } }>('/echo', {
      longRunning: true,
      bodyLimit,
      schema: { querystring: { ...DELAY, properties: { delay: { ...DELAY.properties.delay, default: '0' } } } }
    }, async (request, reply) => {
      await wait(request.query.delay, request.longRunning?.signal)
      return await reply.code(201)
        .header('x-echo', '1')
        .header('content-type', request.headers['content-type'] ?? 'application/octet-stream')
        .send(request.body ?? Buffer.alloc(0))
    })
  })

  app.get('/stats', async () => ({ executions, running }))
  app.get('/health', async () => ({ ok: true }))
  return app
}
