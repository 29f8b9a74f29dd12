import type { FastifyRequest } from 'fastify'
import { InvalidJobRequestError } from '../errors.js'
import { RUN_HEADER } from '../job/context.js'
import { snapshotProblem, type Headers, type JsonValue, type RequestSnapshot } from '../core/wire.js'
import { capturedOf } from './capture.js'

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
 * The request as it must be replayed: method, URL, forwardable headers (minus `drop`), exact
 * body bytes, the origin as this side saw it, and what `carry` returned.
 */
export function snapshotOf (request: FastifyRequest, drop: ReadonlySet<string>, carried?: Record<string, JsonValue>): RequestSnapshot {
  const headers: Headers = {}
  const named = connectionHeaders(request.headers.connection)
  const captured = capturedOf(request)
  const decoded = captured?.decoded === true
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
  if (captured?.upload !== undefined) {
    snapshot.upload = captured.upload
  } else if (captured !== undefined) {
    // A copy of exactly the body's size, even from one chunk: a chunk may be a slice of the
    // socket's 64 KiB read buffer, which the job would otherwise keep alive for its lifetime.
    snapshot.body = Buffer.concat(captured.chunks, captured.bytes)
    // The chunks are garbage from here: a request waiting for its result holds its body once.
    captured.chunks = [snapshot.body]
  }
  if (carried !== undefined) snapshot.carried = carried
  return snapshot
}

/** Headers that `Connection` declares hop-by-hop for this request. */
function connectionHeaders (connection: string | undefined): Set<string> {
  return new Set(connection?.split(',').map(name => name.trim().toLowerCase()) ?? [])
}
