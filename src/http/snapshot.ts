import { pipeline, Transform } from 'node:stream'
import { finished } from 'node:stream/promises'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { BodyTooLargeError, InvalidJobRequestError } from '../errors.js'
import { isJobRun, RUN_HEADER } from '../job/context.js'
import { snapshotProblem, type Headers, type JsonValue, type RequestSnapshot } from '../core/wire.js'

const kBody = Symbol('fastify-long-running.body')

/** The body bytes kept so far, and their count. */
interface Captured { chunks: Buffer[], bytes: number }
const kDecoded = Symbol('fastify-long-running.decoded')
const kTee = Symbol('fastify-long-running.tee')

/** A request body stream as `preParsing` hooks see it. */
export type Payload = NodeJS.ReadableStream & { receivedEncodedLength?: number }

// Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection; content-length is recomputed
// for the replay; `accept-encoding` belongs to whichever request fetches the result (the job
// stores the identity response; the fetching request's own hooks, @fastify/compress say, encode
// it); the last three are @fastify/aws-lambda's own protocol, never the client's.
const NOT_FORWARDED = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'expect', 'content-length', 'accept-encoding',
  'x-aws-lambda-fastify-request', 'x-apigateway-event', 'x-apigateway-context',
  // The run marker is this process's own; a client's copy of it is never forwarded.
  RUN_HEADER
])

/**
 * A `preParsing` hook that keeps a copy of the body bytes exactly as received, whatever the
 * content type, while Fastify's own parser reads them as usual (limits included).
 */
export async function captureBody (request: FastifyRequest, _reply: FastifyReply, payload: Payload): Promise<Payload> {
  if (!hasBody(request) || isJobRun(request)) return payload
  const captured: Captured = { chunks: [], bytes: 0 }
  const tee: Payload = new Transform({
    // Never back-pressure the socket: a parser may read `request.raw` itself (multipart does)
    // and leave this side unread. What waits here is the very buffers kept in `captured`.
    readableHighWaterMark: 1024 ** 3,
    transform (chunk: Buffer, _encoding, callback) {
      captured.chunks.push(chunk)
      captured.bytes += chunk.length
      callback(null, chunk)
    }
  })
  // Keeps the length check of an earlier decoding hook (e.g. decompression) working.
  Object.defineProperty(tee, 'receivedEncodedLength', { get: () => payload.receivedEncodedLength })
  ;(request as unknown as Record<symbol, Captured>)[kBody] = captured
  ;(request as unknown as Record<symbol, Transform>)[kTee] = tee as Transform
  // An app-wide preParsing hook (request decompression) ran before this route-level one: the
  // bytes kept are the decoded ones, so the replay must not claim the client's encoding.
  if (payload !== request.raw) (request as unknown as Record<symbol, boolean>)[kDecoded] = true
  pipeline(payload, tee as Transform, () => {})
  return tee
}

/**
 * The request as it must be replayed: method, URL, forwardable headers (minus `drop`), exact
 * body bytes, the origin as this side saw it, and what `carry` returned.
 */
export function snapshotOf (request: FastifyRequest, drop: ReadonlySet<string>, carried?: Record<string, JsonValue>): RequestSnapshot {
  const headers: Headers = {}
  const named = connectionHeaders(request.headers.connection)
  const decoded = (request as unknown as Record<symbol, boolean | undefined>)[kDecoded] === true
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || NOT_FORWARDED.has(name) || named.has(name) || drop.has(name)) continue
    if (decoded && name === 'content-encoding') continue
    headers[name] = value
  }
  // HEAD runs the route as GET: the stored answer then has the GET's headers (content-length
  // included), and Fastify leaves out the body for whoever fetches it with HEAD.
  const method = request.method === 'HEAD' ? 'GET' : request.method
  const snapshot: RequestSnapshot = {
    method,
    url: request.url,
    headers,
    origin: { ip: request.ip, protocol: request.protocol === 'https' ? 'https' : 'http', host: request.host }
  }
  const problem = snapshotProblem(snapshot)
  if (problem !== undefined) throw new InvalidJobRequestError(problem)
  const captured = (request as unknown as Record<symbol, Captured | undefined>)[kBody]
  if (captured !== undefined) {
    // A copy of exactly the body's size, even from one chunk: a chunk may be a slice of the
    // socket's 64 KiB read buffer, which the job would otherwise keep alive for its lifetime.
    snapshot.body = Buffer.concat(captured.chunks, captured.bytes)
    // The chunks are garbage from here: a request waiting for its result holds its body once.
    captured.chunks = [snapshot.body]
  }
  if (carried !== undefined) snapshot.carried = carried
  return snapshot
}

/**
 * Reads whatever of the body the route's parser left unread (a multipart parser leaves the
 * stream to the handler, which on this side never runs), so that the job gets the whole body
 * and the client's upload is not held up by back-pressure. At most `limit` bytes in all.
 */
export async function drainBody (request: FastifyRequest, limit: number): Promise<void> {
  const tee = (request as unknown as Record<symbol, Transform | undefined>)[kTee]
  if (tee === undefined || tee.readableEnded) return
  const captured = (request as unknown as Record<symbol, Captured>)[kBody] as Captured
  // The rest of the upload is never read: the connection closes after the 413, or the client
  // would go on sending into it and the server could never close (Fastify waits for it).
  tee.on('data', () => { if (captured.bytes > limit) tee.destroy(Object.assign(new BodyTooLargeError(limit), { headers: { connection: 'close' } })) })
  tee.resume()
  await finished(tee)
}

/**
 * Whether the request has a body: one with a length or chunked in HTTP/1.1; in HTTP/2, where
 * neither header is needed, one whose stream did not end with its headers (END_STREAM framing,
 * RFC 9113 §8.1).
 */
/** Whether the request comes with a body (a length, chunks, or an HTTP/2 stream left open). */
export function hasBody (request: FastifyRequest): boolean {
  if (request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined) return true
  const stream = (request.raw as { stream?: { endAfterHeaders?: boolean } }).stream
  return stream !== undefined && stream.endAfterHeaders === false
}

/** Headers that `Connection` declares hop-by-hop for this request. */
function connectionHeaders (connection: string | undefined): Set<string> {
  return new Set(connection?.split(',').map(name => name.trim().toLowerCase()) ?? [])
}
