import type { FastifyRequest } from 'fastify'

/**
 * The methods whose body Fastify never reads (lib/handle-request.js: its `bodyless` set, where a
 * GET, HEAD or TRACE goes straight to the route's hooks and handler, a body sent or not). A body
 * sent with one is no part of the request as the route sees it, so a job keeps none of it either.
 * A method added with `addHttpMethod` is taken to have a body: keeping one that is ignored costs
 * bytes, dropping one that is read would lose it.
 */
const BODYLESS_METHODS = new Set(['GET', 'HEAD', 'TRACE'])

/**
 * Whether the request comes with a body that Fastify reads: a method it parses bodies for, and a
 * length, chunks, or an HTTP/2 stream left open (RFC 9113 §8.1).
 */
export function hasBody (request: FastifyRequest): boolean {
  if (BODYLESS_METHODS.has(request.method)) return false
  if (request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined) return true
  const stream = (request.raw as { stream?: { endAfterHeaders?: boolean } }).stream
  return stream !== undefined && stream.endAfterHeaders === false
}

/** Whether `request` is a multipart one that @fastify/multipart, registered for its route, will parse. */
export function isMultipart (request: FastifyRequest): boolean {
  const type = request.headers['content-type']
  return typeof (request as { isMultipart?: unknown }).isMultipart === 'function' && typeof type === 'string' && /^multipart\/form-data\s*(;|$)/i.test(type)
}
