/** A result the plugin kept in S3: downloaded, and answered with the route's own status and headers. */
import type { DescribedResult } from './status.js'

/** Statuses whose responses have no body (the Fetch standard's null body statuses). */
const NULL_BODY: ReadonlySet<number> = new Set([101, 103, 204, 205, 304])

/** Whether a described result has a body to download (a `204` or a `304` has none). */
export function hasBody (result: DescribedResult): boolean {
  return !NULL_BODY.has(result.statusCode)
}

/**
 * The download of a result's body from its presigned URL: a plain `GET` with none of the
 * caller's headers and no `Prefer` (so a browser sends no CORS preflight), no credentials and
 * no `Referer` (the URL is the only credential, and nothing of the caller's goes to S3).
 */
export function downloadRequest (url: URL, signal: AbortSignal): Request {
  return new Request(url, { credentials: 'omit', mode: 'cors', referrerPolicy: 'no-referrer', signal })
}

/** S3's own answers worth asking again: `500 InternalError`, `503 SlowDown`. */
export function s3Unavailable (response: Response): boolean {
  return response.status === 500 || response.status === 503
}

/**
 * The route's response: its status and headers, the downloaded body. A browser's `Response`
 * drops `set-cookie` (it took the route's cookies from the description already); Node keeps it.
 */
export function routeResponse (result: DescribedResult, body: ReadableStream<Uint8Array> | null): Response {
  const headers = new Headers()
  for (const [name, value] of Object.entries(result.headers)) {
    for (const item of [value].flat()) headers.append(name, item)
  }
  for (const cookie of result.cookies) headers.append('set-cookie', cookie)
  return new Response(body, { status: result.statusCode, headers })
}
