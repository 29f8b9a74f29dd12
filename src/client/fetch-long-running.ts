// The client runs in browsers and in Node ≥ 20 alike: it uses only what both have globally
// (fetch, Request, Headers, AbortSignal, crypto.randomUUID, setTimeout) and its own files.
import { Job, unavailable, type Settings } from './job.js'
import { conflictOf, describedResultOf, statusOf, type LongRunningProgress } from './status.js'
import { callSignal, retryAfterMs, untilAborted } from './waiting.js'

export type { LongRunningProgress }

/** Options of {@link fetchLongRunning}. */
export interface FetchLongRunningOptions {
  /** Called with each status the server answers while the job runs. */
  onProgress?: (progress: LongRunningProgress) => void
  /**
   * Aborting rejects the call with the signal's reason (an `AbortError` by default) and cancels
   * the job on the server (`DELETE` on its URL, best effort). `init.signal` works the same way.
   */
  signal?: AbortSignal
  /** A total time limit: past it the call rejects with a `TimeoutError` and the job is cancelled. */
  timeoutMs?: number
  /** The `fetch` to use. @default globalThis.fetch */
  fetch?: (request: Request) => Promise<Response>
  /**
   * Seconds each request asks the server to wait for the result (`Prefer: wait`) before it
   * answers `202`; the server never waits longer than its own `waitSeconds`. The first request
   * waits at most 2 s, so that the job's URL (needed to cancel it) is known early.
   * @default 1 with `onProgress` (a status every second), else 20
   */
  waitSeconds?: number
  /**
   * The `Idempotency-Key` of a POST, PUT, PATCH or DELETE: generated unless given here or in
   * `init.headers`; `false` sends none (and then a lost first answer is not retried).
   */
  idempotencyKey?: string | false
  /**
   * Retries of a request that failed on the network, got `503`, or got a front end's own `500`,
   * `502` or `504` (API Gateway, ALB: an answer without the plugin's `Preference-Applied`); a
   * status request also after `429`. A first request only with an `Idempotency-Key`. @default 5
   */
  retries?: number
  /**
   * Origins (`https://jobs.example.com`) besides the first request's whose job URLs the call
   * may follow. Requests there carry no credentials, no cookies and none of your headers, and an
   * abort cancels nothing there. A job URL on any other origin, or not http(s), rejects the call.
   * @default []
   */
  allowedOrigins?: string[]
}

const KEYED_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
const FIRST_WAIT_SECONDS = 2
/** Answers after which a status request is sent again: also a rate limit's `429`, whose `Retry-After` it honours. */
const statusRetry = (response: Response): boolean => response.status === 429 || unavailable(response)
/** A server that answers `202` for ever is given up on: over a day at one status a second. */
const MAX_STATUS_ANSWERS = 100_000

/**
 * `fetch` for a long-running route: resolves with the route's final response (status, headers,
 * body, as `fetch` would have returned it from a synchronous route; a result kept in S3 too:
 * its body is downloaded from its presigned URL, its status and headers are the route's),
 * however many waits it took. The requests ask `Prefer: respond-async, wait=N`, so each waits on
 * the server and answers `202` with the job's status when the wait ends; the call then asks
 * again, honouring `Retry-After`. Requests that fail on the network, get `503` or a front end's
 * own error are retried with a bounded back-off, but a first request only when an
 * `Idempotency-Key` makes the retry safe: the job never runs twice.
 *
 * @example
 * const response = await fetchLongRunning('/report', { method: 'POST', body }, {
 *   onProgress: ({ fraction }) => bar.set(fraction ?? 0),
 *   signal: controller.signal
 * })
 */
export async function fetchLongRunning (
  input: string | URL | Request,
  init: RequestInit = {},
  options: FetchLongRunningOptions = {}
): Promise<Response> {
  const settings = settingsOf(options)
  const { signal, dispose } = callSignal([input instanceof Request ? input.signal : undefined, init.signal ?? undefined, options.signal], options.timeoutMs)
  try {
    return await follow(settings, input, init, options, signal)
  } finally {
    dispose()
  }
}

async function follow (settings: Settings, input: string | URL | Request, init: RequestInit, options: FetchLongRunningOptions, signal: AbortSignal): Promise<Response> {
  if (signal.aborted) throw signal.reason
  const { signal: _ignored, ...rest } = init
  const base = new Request(input, rest)
  const headers = new Headers(base.headers)
  const key = keyOf(base.method, headers, options.idempotencyKey)
  if (key !== undefined) headers.set('idempotency-key', key)
  headers.set('prefer', `respond-async, wait=${Math.min(FIRST_WAIT_SECONDS, settings.waitSeconds)}`)
  const first = new Request(base, { headers })
  const job = new Job(settings, first, signal)
  try {
    // The first request is not aborted: its answer names the job, which an abort then cancels.
    // Sent again only with a key the server honours: a body-carrying method's (GET and HEAD keys are ignored).
    const answer = job.send(() => first.clone(), KEYED_METHODS.has(first.method) && headers.has('idempotency-key'))
    let response = await untilAborted(answer, signal, () => { answer.then(async response => await job.cancel(response)).catch(() => {}) })
    for (let answers = 1; ; answers++) {
      // A result kept in S3: described with the route's status and headers, its body downloaded.
      const described = await describedResultOf(response)
      if (described !== undefined) return await job.download(described, response)
      const status = await statusOf(response) ?? await conflictOf(response)
      if (status === undefined) return response
      job.unhook()
      job.locate(status, response)
      if (answers >= MAX_STATUS_ANSWERS) throw new Error(`fetchLongRunning: job ${job.location as string} still not done after ${answers} status answers`)
      settings.onProgress?.({ ...status, location: job.location as string })
      await job.pause(retryAfterMs(response, 1_000))
      // A status request may also meet a rate limit: its 429 is the polling's, not the route's answer.
      response = await job.send(() => job.statusRequest(), true, statusRetry)
    }
  } finally {
    job.settle()
  }
}

function keyOf (method: string, headers: Headers, option: string | false | undefined): string | undefined {
  if (!KEYED_METHODS.has(method) || option === false || headers.has('idempotency-key')) return undefined
  // A Structured Field string, as the Idempotency-Key draft writes it.
  return `"${option ?? crypto.randomUUID()}"`
}

/** Every option's name, so that a misspelt one (`timeout`, `onprogress`) is an error, not ignored. */
const OPTION_NAMES: Record<keyof FetchLongRunningOptions, true> = { onProgress: true, signal: true, timeoutMs: true, fetch: true, waitSeconds: true, idempotencyKey: true, retries: true, allowedOrigins: true }

function settingsOf (options: FetchLongRunningOptions): Settings {
  if (typeof options !== 'object' || options === null) throw new TypeError(`fetchLongRunning: options must be an object, got ${String(options)}`)
  const unknown = Object.keys(options).find(name => !Object.hasOwn(OPTION_NAMES, name))
  if (unknown !== undefined) throw new TypeError(`fetchLongRunning: unknown option "${unknown}"; the options are ${Object.keys(OPTION_NAMES).join(', ')}`)
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new TypeError('fetchLongRunning: signal must be an AbortSignal')
  const { waitSeconds = options.onProgress === undefined ? 20 : 1, retries = 5, timeoutMs } = options
  if (!Number.isInteger(waitSeconds) || waitSeconds < 0) throw new TypeError(`fetchLongRunning: waitSeconds must be a whole number of seconds ≥ 0, got ${String(waitSeconds)}`)
  if (!Number.isInteger(retries) || retries < 0) throw new TypeError(`fetchLongRunning: retries must be a whole number ≥ 0, got ${String(retries)}`)
  // Timers hold at most 2^31 − 1 ms (about 24.8 days); a longer one would fire at once.
  if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs > 0 && timeoutMs <= 2 ** 31 - 1)) {
    throw new TypeError(`fetchLongRunning: timeoutMs must be a whole number of milliseconds from 1 to 2147483647, got ${String(timeoutMs)}`)
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw new TypeError('fetchLongRunning: onProgress must be a function')
  if (options.fetch !== undefined && typeof options.fetch !== 'function') throw new TypeError('fetchLongRunning: fetch must be a function')
  if (options.idempotencyKey !== undefined && options.idempotencyKey !== false && !/^[\x20\x21\x23-\x5b\x5d-\x7e]{1,255}$/.test(String(options.idempotencyKey))) {
    throw new TypeError('fetchLongRunning: idempotencyKey must be 1 to 255 visible ASCII characters other than " and \\')
  }
  const fetcher = options.fetch ?? (async (request: Request) => await globalThis.fetch(request))
  return { fetch: fetcher, waitSeconds, retries, onProgress: options.onProgress, allowedOrigins: originsOf(options.allowedOrigins) }
}

function urlOf (value: unknown): URL | undefined {
  try {
    return typeof value === 'string' ? new URL(value) : undefined
  } catch {
    return undefined
  }
}

function originsOf (value: unknown): ReadonlySet<string> {
  if (value === undefined) return new Set()
  const origins = Array.isArray(value) ? value.map(urlOf) : [undefined]
  const bad = origins.findIndex(url => url === undefined || !['http:', 'https:'].includes(url.protocol) || url.href !== `${url.origin}/`)
  if (bad !== -1) throw new TypeError(`fetchLongRunning: allowedOrigins must be an array of http(s) origins such as "https://jobs.example.com", got ${JSON.stringify(value)}`)
  return new Set(origins.map(url => (url as URL).origin))
}
