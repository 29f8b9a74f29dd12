import type { FastifyRequest } from 'fastify'
import { InvalidHopError } from '../errors.js'
import { PATH_PREFIX } from '../validate.js'
import { invocationOf } from './front-end.js'

/**
 * Redirect-following clients give up after about 20 hops (browsers, `fetch`). After this many
 * 303s in a row the wait answers 202 with `Refresh` instead, which starts a fresh navigation.
 */
export const HOPS_BEFORE_ACCEPTED = 18

/** Where results are fetched, below the route prefix: the one place that spells it. */
export const ASYNC_RESPONSE_PATH = '/async-response'

/**
 * The path the client used in front of what Fastify sees: API Gateway's stage (`/prod`) or a
 * custom domain's base path mapping. Read only from the event that `@fastify/aws-lambda` hands
 * over, never from `Host` or `X-Forwarded-*`, which any client can set.
 */
export function basePathOf (request: FastifyRequest, property?: string): string {
  const event = invocationOf(request, property)?.event
  const seen = event?.requestContext?.path ?? event?.requestContext?.http?.path
  if (typeof seen !== 'string') return ''
  const path = request.url.split('?', 1)[0] as string
  if (seen.length <= path.length || !seen.endsWith(path)) return ''
  const base = seen.slice(0, seen.length - path.length)
  return PATH_PREFIX.test(base) ? base : ''
}

/**
 * The relative URL of a job's result. `hop` counts the redirects so far and makes every
 * Location different from the last, so that no client or cache sees the same URL twice.
 */
export function resultLocation (prefix: string, id: string, hop: number): string {
  return `${prefix}${ASYNC_RESPONSE_PATH}/${id}?hop=${hop}`
}

const MAX_HOP = 9999

/** Reads `?hop=`; absent means 0 (a client that built the URL itself). */
export function parseHop (value: unknown): number {
  if (value === undefined) return 0
  if (typeof value !== 'string' || !/^\d{1,4}$/.test(value)) throw new InvalidHopError()
  return Number(value)
}

/** The hop after `hop`; wraps so that a tab left refreshing for days keeps a valid URL. */
export function nextHop (hop: number): number {
  return hop >= MAX_HOP ? 1 : hop + 1
}
