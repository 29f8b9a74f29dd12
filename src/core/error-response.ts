import { STATUS_CODES } from 'node:http'
import type { StoredResponse } from './wire.js'

/** An error the plugin stores as a job's final response, and throws again when it hands it over. */
export interface PluginError {
  statusCode: number
  code: string
  message: string
}

// The plugin's errors that end a job (errors.ts): only these are stored by errorResponse.
const STORED_CODES = new Set([
  'FST_LONG_RUNNING_JOB_TIMEOUT',
  'FST_LONG_RUNNING_ATTEMPTS_EXHAUSTED',
  'FST_LONG_RUNNING_RESPONSE_TOO_LARGE',
  'FST_LONG_RUNNING_ENDLESS_RESPONSE',
  'FST_LONG_RUNNING_RESPONSE_FAILED',
  'FST_LONG_RUNNING_JOB_CANCELLED',
  'FST_LONG_RUNNING_RESULT_EVICTED',
  'FST_LONG_RUNNING_INVALID_MESSAGE'
])

/**
 * A final response for an error raised by the plugin itself, in Fastify's default error shape
 * (`statusCode`, `code`, `error`, `message`): what a reader of the store or a worker's log sees.
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

/**
 * The plugin's error in a stored response that {@link errorResponse} wrote, else undefined. The
 * HTTP side throws it instead of sending the bytes, so that the app's error handler shapes a
 * timeout or a cancellation as it shapes every other error of the app.
 */
export function storedError (response: StoredResponse): (Error & PluginError) | undefined {
  // errorResponse's bodies are under 300 bytes: larger ones are never parsed.
  if (response.external !== undefined || response.body.length > 1024 || response.headers['content-type'] !== 'application/json; charset=utf-8') return undefined
  let body: unknown
  try {
    body = JSON.parse(response.body.toString('utf8'))
  } catch {
    return undefined
  }
  const { statusCode, code, error, message } = body as Record<string, unknown>
  const shaped = Object.keys(body as object).length === 4 && statusCode === response.statusCode &&
    typeof code === 'string' && STORED_CODES.has(code) && error === STATUS_CODES[response.statusCode] && typeof message === 'string'
  return shaped ? Object.assign(new Error(message), { statusCode: response.statusCode, code }) : undefined
}
