import { pipeline, Transform } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { isJobRun } from '../job/context.js'
import type { Headers, RequestSnapshot } from '../job/wire.js'

const kBody = Symbol('fastify-long-running.body')

type Payload = NodeJS.ReadableStream & { receivedEncodedLength?: number }

// Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection; content-length is recomputed
// for the replay; the last three are @fastify/aws-lambda's own protocol, never the client's.
const NOT_FORWARDED = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'expect', 'content-length',
  'x-aws-lambda-fastify-request', 'x-apigateway-event', 'x-apigateway-context'
])

/**
 * A `preParsing` hook that keeps a copy of the body bytes exactly as received, whatever the
 * content type, while Fastify's own parser reads them as usual (limits included).
 */
export async function captureBody (request: FastifyRequest, _reply: FastifyReply, payload: Payload): Promise<Payload> {
  const hasBody = request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined
  if (!hasBody || isJobRun(request)) return payload
  const chunks: Buffer[] = []
  const tee: Payload = new Transform({
    transform (chunk: Buffer, _encoding, callback) {
      chunks.push(chunk)
      callback(null, chunk)
    }
  })
  // Keeps the length check of an earlier decoding hook (e.g. decompression) working.
  Object.defineProperty(tee, 'receivedEncodedLength', { get: () => payload.receivedEncodedLength })
  ;(request as unknown as Record<symbol, Buffer[]>)[kBody] = chunks
  pipeline(payload, tee as Transform, () => {})
  return tee
}

/**
 * The request as it must be replayed: method, URL, forwardable headers (minus `drop`), exact
 * body bytes.
 */
export function snapshotOf (request: FastifyRequest, drop: ReadonlySet<string>): RequestSnapshot {
  const headers: Headers = {}
  const named = connectionHeaders(request.headers.connection)
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined && !NOT_FORWARDED.has(name) && !named.has(name) && !drop.has(name)) headers[name] = value
  }
  const snapshot: RequestSnapshot = { method: request.method, url: request.url, headers }
  const chunks = (request as unknown as Record<symbol, Buffer[] | undefined>)[kBody]
  if (chunks !== undefined) snapshot.body = Buffer.concat(chunks)
  return snapshot
}

/** Headers that `Connection` declares hop-by-hop for this request. */
function connectionHeaders (connection: string | undefined): Set<string> {
  return new Set(connection?.split(',').map(name => name.trim().toLowerCase()) ?? [])
}
