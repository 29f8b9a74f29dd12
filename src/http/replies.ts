import type { FastifyReply } from 'fastify'
import type { StoredResponse } from '../core/wire.js'
import type { JobRecord } from '../core/job-state.js'
import { setStoredCookies } from './cookies.js'

/** The JSON body of 303 and 202 answers. */
export interface JobStatusBody {
  id: string
  status: 'pending' | 'running'
  location: string
  progress?: { fraction: number, message?: string }
}

function statusBody (record: JobRecord, location: string): JobStatusBody {
  const body: JobStatusBody = { id: record.id, status: record.status === 'pending' ? 'pending' : 'running', location }
  if (record.progress !== undefined) body.progress = record.progress
  return body
}

// Interim answers are per-client and short-lived: never cached, and the job URL never leaks
// to third parties through Referer.
function interim (reply: FastifyReply, status: number, location: string): FastifyReply {
  return uncached(reply.code(status).header('location', location))
}

/** An answer about the job, not the result: never cached, and its URL never sent on as a referrer. */
function uncached (reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer')
}

/**
 * Sends the plugin's own JSON body as text: a route's own `response` schema for the same status
 * (its `202`, say) must not reshape the plugin's answer, which the client reads field by field.
 */
async function sendJson (reply: FastifyReply, body: object): Promise<FastifyReply> {
  return await reply.type('application/json; charset=utf-8').send(JSON.stringify(body))
}

/** `303 See Other` to the next wait. */
export async function sendRedirect (reply: FastifyReply, record: JobRecord, location: string): Promise<FastifyReply> {
  return await sendJson(interim(reply, 303, location), statusBody(record, location))
}

/**
 * `202 Accepted`: for `Prefer: respond-async` (`preferenceApplied`), and for browsers after
 * {@link HOPS_BEFORE_ACCEPTED} redirects, where `Refresh` keeps the tab waiting. `Retry-After`
 * is 0 after a wait the client asked for (`Prefer: respond-async, wait=N`), else 1.
 */
export async function sendAccepted (
  reply: FastifyReply,
  record: JobRecord,
  location: string,
  preferenceApplied: boolean,
  retryAfterSeconds: number
): Promise<FastifyReply> {
  if (preferenceApplied) interim(reply, 202, location).header('retry-after', String(retryAfterSeconds)).header('preference-applied', 'respond-async')
  else refreshing(reply, location)
  return await sendJson(reply, statusBody(record, location))
}

/**
 * The headers of a `202` that keeps a browser tab waiting: `Refresh` to the next wait, one
 * second on (that request then waits on the server), for the JSON body and the waiting page alike.
 */
export function refreshing (reply: FastifyReply, location: string): FastifyReply {
  return interim(reply, 202, location).header('retry-after', '1').header('refresh', `1; url=${location}`)
}

/**
 * A finished job's status instead of its result, to `Prefer: return=minimal` on
 * `/async-response` (the waiting page's polls): `200` and `{ id, status: 'done', statusCode,
 * location }`, `location` where the result is. The result is not read, so not handed over: no
 * body, no cookies, and the store keeps it as unread.
 */
export async function sendDone (reply: FastifyReply, id: string, statusCode: number, location: string): Promise<FastifyReply> {
  uncached(reply.code(200)).header('preference-applied', 'return=minimal')
  return await sendJson(reply, { id, status: 'done', statusCode, location })
}

/** Tells the client what status the route gave a result whose body it fetches elsewhere. */
export const STATUS_HEADER = 'x-long-running-status'

/**
 * A result whose body is in S3: `303 See Other` to a presigned URL of it. Only the body and the
 * headers that travel with it (content type, encoding, disposition, cache control) are served
 * there; the route's status is in {@link STATUS_HEADER} and in the JSON body of this answer, and
 * its cookies are this answer's `Set-Cookie` (a browser and `curl -L -c` store a redirect's).
 *
 * With `Prefer: respond-async` (`describe`) the result is described instead: `202` with
 * `Preference-Applied: respond-async`, `Location` the presigned URL, and a JSON body
 * {@link ExternalResultBody} holding the route's status and headers. The client then downloads
 * the URL with a plain GET (no `Prefer`, so no CORS preflight at S3) and answers with the
 * route's own status and headers. The route's cookies go out as this answer's `Set-Cookie`,
 * where the browser takes them as it would from the route, never into a body scripts can read.
 */
export async function sendExternal (reply: FastifyReply, id: string, response: StoredResponse, url: string, describe: boolean): Promise<FastifyReply> {
  const { 'set-cookie': cookies, ...headers } = response.headers
  setStoredCookies(reply, cookies)
  if (!describe) {
    return await sendJson(interim(reply, 303, url).header(STATUS_HEADER, String(response.statusCode)), { id, status: 'done', statusCode: response.statusCode, location: url })
  }
  const body: ExternalResultBody = { id, status: 'done', statusCode: response.statusCode, headers, location: url }
  return await sendJson(interim(reply, 202, url).header(STATUS_HEADER, String(response.statusCode)).header('preference-applied', 'respond-async'), body)
}

/** The JSON body of a described result (`Prefer: respond-async`) whose body is in S3. */
export interface ExternalResultBody {
  id: string
  status: 'done'
  /** The route's status. */
  statusCode: number
  /** The route's headers but `set-cookie`, as it gave them. */
  headers: Record<string, string | string[]>
  /** The presigned URL of the body. */
  location: string
}

/**
 * The route's own response, as stored: status, every header, exact bytes. The fetching
 * request's own hooks still run on it (compression, CORS, sessions), so `Vary` keeps what they
 * set, and their cookies meet the route's as `keepRouteCookies` (cookies.ts) says.
 */
export async function sendStored (reply: FastifyReply, response: StoredResponse): Promise<FastifyReply> {
  reply.code(response.statusCode)
  const { 'set-cookie': cookies, ...headers } = response.headers
  for (const [name, value] of Object.entries(headers)) {
    reply.header(name, name === 'vary' ? mergeVary(reply.getHeader('vary'), value) : value)
  }
  setStoredCookies(reply, cookies)
  // An empty body is sent as none, so that Fastify adds no content-type the route never set.
  return await (response.body.length === 0 ? reply.send() : reply.send(response.body))
}

function mergeVary (live: unknown, stored: string | string[]): string {
  const names = [live, stored].flat().filter((value): value is string => typeof value === 'string')
    .flatMap(value => value.split(',')).map(name => name.trim()).filter(name => name !== '')
  return [...new Map(names.map(name => [name.toLowerCase(), name])).values()].join(', ')
}
