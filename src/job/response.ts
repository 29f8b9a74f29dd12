import { lambdaResponseBytes, MAX_RESPONSE_BYTES } from '../core/response-limits.js'
import type { Headers, StoredResponse } from '../core/wire.js'

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

/** Where a route's response goes: {@link placeResult}. */
export type Placement =
  | { kind: 'stored', response: StoredResponse }
  | { kind: 'outside', chunks: readonly Buffer[] }
  | { kind: 'tooLarge', bytes: number, limit: number }

/**
 * Decides where a route's response goes: into the store (joined, ≤ 6 MiB), or as the chunks the
 * route wrote, never joined into a copy, to the results bucket (`thresholdBytes` given: S3) when
 * too large for the store or for the front end; else it is too large, and an error is stored.
 */
export function placeResult (
  head: Omit<StoredResponse, 'body'>,
  body: { chunks: readonly Buffer[], bytes: number },
  responseLimit: number | undefined,
  thresholdBytes: number | undefined
): Placement {
  const { chunks, bytes } = body
  if (thresholdBytes !== undefined && (bytes >= thresholdBytes || bytes > MAX_RESPONSE_BYTES)) return { kind: 'outside', chunks }
  if (bytes > MAX_RESPONSE_BYTES) return { kind: 'tooLarge', bytes, limit: MAX_RESPONSE_BYTES }
  const response: StoredResponse = { ...head, body: chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks, bytes) }
  // Stored only if the front end the request came through can return it: otherwise every read
  // of it would fail there (a 502 from API Gateway) until it expired. Sized only where a front
  // end limits it: for a large text body the sizing itself is costly.
  const frontEndBytes = responseLimit === undefined ? 0 : lambdaResponseBytes(response)
  if (responseLimit === undefined || frontEndBytes <= responseLimit) return { kind: 'stored', response }
  if (thresholdBytes !== undefined) return { kind: 'outside', chunks: [response.body] }
  return { kind: 'tooLarge', bytes: frontEndBytes, limit: responseLimit }
}
