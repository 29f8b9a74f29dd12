import { STATUS_CODES } from 'node:http'
import type { Headers, StoredResponse } from './wire.js'

/** The largest response a job may store: API Gateway's and Lambda's 6 MiB payload limit. */
export const MAX_RESPONSE_BYTES = 6 * 1024 * 1024

// Framing headers describe one transfer, not the response: the replaying server sets its own.
const FRAMING = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date'])

/**
 * Keeps every header a route set (several `set-cookie` as an array), minus framing ones and
 * CORS ones: CORS is decided for the request that fetches the result (its origin may differ
 * from the one that started the job), by the app's own CORS hooks on that request.
 */
export function keepHeaders (headers: Record<string, string | string[] | number | undefined>): Headers {
  const kept: Headers = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || FRAMING.has(name) || name.startsWith('access-control-')) continue
    kept[name] = typeof value === 'number' ? String(value) : value
  }
  return kept
}

/**
 * A final response for an error raised by the plugin itself, in Fastify's default error shape
 * (`statusCode`, `code`, `error`, `message`), so that clients parse it like any Fastify error.
 */
export function errorResponse (error: { statusCode?: number, code: string, message: string }): StoredResponse {
  const statusCode = error.statusCode ?? 500
  const body = { statusCode, code: error.code, error: STATUS_CODES[statusCode], message: error.message }
  return {
    statusCode,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: Buffer.from(JSON.stringify(body))
  }
}
