import { createHash } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { IdempotencyKeyMissingError, InvalidIdempotencyKeyError } from '../errors.js'
import type { KeyedRequest } from '../job/acceptance.js'
import { isJobRun } from '../job/context.js'
import type { RequestSnapshot } from '../core/wire.js'
import type { IdempotencySettings } from '../route-options.js'
import type { Payload } from './capture.js'

/**
 * `Idempotency-Key` on the HTTP side (draft-ietf-httpapi-idempotency-key-header-07): reading
 * the key, scoping it and fingerprinting the request. Its errors are thrown, to the app's error handler.
 */

/** Methods a key applies to: the ones that are not idempotent by themselves (RFC 9110 §9.2.2), and DELETE. */
export const KEYED_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** Tells the client that the answer is the key's earlier job's, not a run of its own (as Stripe does). */
export const REPLAYED_HEADER = 'idempotent-replayed'

const MAX_KEY_LENGTH = 255
// A Structured Field String (RFC 8941 §3.3.3): printable ASCII in quotes, `\"` and `\\` escaped.
const SF_STRING = /^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"$/
// A bare key, as many clients send it (a UUID, say): visible ASCII but the quote, the comma
// (several values joined) and the backslash.
const BARE_KEY = /^[\x21\x23-\x2b\x2d-\x5b\x5d-\x7e]+$/

const kKey = Symbol('fastify-long-running.idempotency-key')

/**
 * The `preParsing` hook of a route that takes keys: the key is read from the header before a
 * byte of the body is, so that a request without one (where required) or with a malformed one
 * is answered at once instead of after its whole upload. The key is kept for {@link keyOfRequest}.
 */
export function checkKey (settings: IdempotencySettings): (request: FastifyRequest, reply: FastifyReply, payload: Payload) => Promise<Payload> {
  return async (request, _reply, payload) => {
    if (!KEYED_METHODS.has(request.method) || isJobRun(request)) return payload
    // A key error is thrown to the app's error handler; Fastify then reads no further: the body
    // is left unread, and discarded.
    const slots = request as unknown as Record<symbol, string | undefined>
    slots[kKey] = keyOf(request.headers[settings.header], settings)
    return payload
  }
}

/** The key {@link checkKey} read from the request, unescaped; `undefined` without one. */
export function keyOfRequest (request: FastifyRequest): string | undefined {
  return (request as unknown as Record<symbol, string | undefined>)[kKey]
}

/**
 * The key a request carries, unescaped; `undefined` without one (unless the route requires it).
 * Throws the error to answer with: a key that is not exactly one string of 1 to 255 characters.
 */
export function keyOf (value: string | string[] | undefined, settings: IdempotencySettings): string | undefined {
  if (value === undefined) {
    if (settings.required) throw new IdempotencyKeyMissingError(settings.header)
    return undefined
  }
  const quoted = typeof value === 'string' ? SF_STRING.exec(value) : null
  const key = quoted !== null ? (quoted[1] as string).replace(/\\(["\\])/g, '$1') : value
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH || (quoted === null && !BARE_KEY.test(key))) {
    throw new InvalidIdempotencyKeyError(settings.header)
  }
  return key
}

/**
 * Digests of the key in its scope and of the request. The scope (method, path, `bindTo` value)
 * keeps two routes or two callers from ever sharing a key; the fingerprint (method, path and
 * query, content type, body bytes) tells a retry from another request under the same key.
 */
export function keyedRequest (key: string, request: RequestSnapshot, binding: string | undefined): KeyedRequest {
  const path = request.url.split('?', 1)[0]
  // An uploaded body was hashed as it streamed, in the same form: one request, one fingerprint, wherever its body went.
  const body = request.upload?.sha256 ?? createHash('sha256').update(request.body ?? Buffer.alloc(0)).digest('base64url')
  return {
    key: digest(['key', request.method, path, binding ?? null, key]),
    fingerprint: digest([request.method, request.url, request.headers['content-type'] ?? null, body])
  }
}

function digest (parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url')
}
