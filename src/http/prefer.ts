import type { FastifyReply, FastifyRequest } from 'fastify'
import { isJobRun } from '../job/context.js'

/** The preferences of an RFC 7240 `Prefer` header that this plugin honours. */
export interface Preferences {
  /** `respond-async`: answer 202 at once instead of waiting. */
  respondAsync: boolean
  /** `wait=N`: wait at most N seconds (never longer than configured). */
  waitSeconds?: number
  /**
   * `return=minimal` (§4.2), honoured on `/async-response` only and together with
   * `respond-async`: a finished job answers with its status instead of its result (the waiting
   * page's polls), so the result is never read.
   */
  returnMinimal: boolean
}

const DELTA_SECONDS = /^\d{1,9}$/

/**
 * Parses `Prefer` (RFC 7240 §2): comma-separated preferences, names case-insensitive, values
 * optionally quoted, parameters after `;` ignored. Unknown or malformed preferences are
 * ignored, as the RFC asks; several headers count as one list.
 */
export function parsePrefer (header: string | string[] | undefined): Preferences {
  const preferences: Preferences = { respondAsync: false, returnMinimal: false }
  if (header === undefined) return preferences
  for (const item of (Array.isArray(header) ? header.join(',') : header).split(',')) {
    const [token = ''] = item.split(';')
    const equals = token.indexOf('=')
    const name = (equals === -1 ? token : token.slice(0, equals)).trim().toLowerCase()
    const value = equals === -1 ? '' : token.slice(equals + 1).trim().replace(/^"(.*)"$/, '$1')
    if (name === 'respond-async') preferences.respondAsync = true
    else if (name === 'return' && value.toLowerCase() === 'minimal') preferences.returnMinimal = true
    else if (name === 'wait' && DELTA_SECONDS.test(value) && preferences.waitSeconds === undefined) {
      preferences.waitSeconds = Number(value)
    }
  }
  return preferences
}

/**
 * An `onSend` hook of the plugin's routes (long-running routes and `/async-response`): every
 * answer to a request that asked `Prefer: wait=N` names it in `Preference-Applied` (RFC 7240
 * §3). The plugin never waits longer than asked, so it honours `wait` with every answer it gives,
 * results and its own errors alike; its `202` names `respond-async` as well. A front end's own
 * error (API Gateway's `500` when Lambda throttles, an ALB's `502`) names neither: this is how
 * the client tells them apart, through CORS too (`Preference-Applied` is what a page reads).
 */
export async function namePreferencesApplied (request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
  // A job run's reply is the route's own response, stored as the handler gave it.
  if (isJobRun(request)) return payload
  const { waitSeconds } = parsePrefer(request.headers.prefer)
  if (waitSeconds === undefined) return payload
  const applied = reply.getHeader('preference-applied')
  const names = [applied].flat().filter((value): value is string => typeof value === 'string' && value !== '')
  reply.header('preference-applied', [...names, `wait=${waitSeconds}`].join(', '))
  return payload
}
