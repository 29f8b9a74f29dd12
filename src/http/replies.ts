import type { FastifyReply } from 'fastify'
import type { StoredResponse } from '../job/wire.js'
import type { JobRecord } from '../store/store.js'

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
  return reply.code(status)
    .header('location', location)
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
}

/** `303 See Other` to the next wait. */
export async function sendRedirect (reply: FastifyReply, record: JobRecord, location: string): Promise<FastifyReply> {
  return await interim(reply, 303, location).send(statusBody(record, location))
}

/**
 * `202 Accepted`: for `Prefer: respond-async` (`preferenceApplied`), and for browsers after
 * {@link HOPS_BEFORE_ACCEPTED} redirects, where `Refresh` keeps the tab waiting.
 */
export async function sendAccepted (
  reply: FastifyReply,
  record: JobRecord,
  location: string,
  preferenceApplied: boolean
): Promise<FastifyReply> {
  interim(reply, 202, location).header('retry-after', '1')
  if (preferenceApplied) reply.header('preference-applied', 'respond-async')
  else reply.header('refresh', `1; url=${location}`)
  return await reply.send(statusBody(record, location))
}

/**
 * The route's own response, as stored: status, every header, exact bytes. The fetching
 * request's own hooks still run on it (compression, CORS), so `Vary` keeps what they set.
 */
export async function sendStored (reply: FastifyReply, response: StoredResponse): Promise<FastifyReply> {
  reply.code(response.statusCode)
  for (const [name, value] of Object.entries(response.headers)) {
    reply.header(name, name === 'vary' ? mergeVary(reply.getHeader('vary'), value) : value)
  }
  // An empty body is sent as none, so that Fastify adds no content-type the route never set.
  return await (response.body.length === 0 ? reply.send() : reply.send(response.body))
}

function mergeVary (live: unknown, stored: string | string[]): string {
  const names = [live, stored].flat().filter((value): value is string => typeof value === 'string')
    .flatMap(value => value.split(',')).map(name => name.trim()).filter(name => name !== '')
  return [...new Map(names.map(name => [name.toLowerCase(), name])).values()].join(', ')
}
