import { downloadRequest, hasBody, routeResponse, s3Unavailable } from './result.js'
import { isPluginAnswer, statusOf, type DescribedResult, type LongRunningProgress } from './status.js'
import { backoffMs, retryAfterMs, sleep } from './waiting.js'

/**
 * Requests of one call start at least this far apart, whatever `Retry-After` says (`0`, a past
 * date): one that waited on the server is asked again at once, one answered at once a second later.
 */
const MIN_REQUEST_INTERVAL_MS = 1_000
/** Headers that describe the first request's body: they do not travel to the status requests. */
const BODY_HEADERS = ['content-type', 'content-length', 'content-encoding', 'content-language', 'idempotency-key', 'prefer']
/**
 * A front end's own errors: API Gateway's `500 {"message":"Internal server error"}` when Lambda
 * throttles the function, its `502` and `504`, an ALB's `502`, `503` and `504`. Without the
 * plugin's `Preference-Applied` they are not the route's answer, and are asked again.
 */
const FRONT_END_ERRORS: ReadonlySet<number> = new Set([500, 502, 503, 504])

/** Whether an answer is worth asking again for: `503` (the plugin's too), or a front end's error. */
export function unavailable (response: Response): boolean {
  return response.status === 503 || (FRONT_END_ERRORS.has(response.status) && !isPluginAnswer(response))
}

/** A call's settings, checked once (see `FetchLongRunningOptions`). */
export interface Settings {
  fetch: (request: Request) => Promise<Response>
  waitSeconds: number
  retries: number
  onProgress: ((progress: LongRunningProgress) => void) | undefined
  allowedOrigins: ReadonlySet<string>
}

/** The requests of one job: its status requests, their retries, and its cancellation. */
export class Job {
  readonly #settings: Settings
  /** The first request: its URL, headers, credentials and mode are the status requests' too. */
  readonly #base: Request
  readonly #origin: string
  readonly #signal: AbortSignal
  readonly #headers: Headers
  readonly #onAbort = (): void => { this.cancel().catch(() => {}) }
  /** Unhooks the latest status request from the call's signal, once its answer is read. */
  #unhook = (): void => {}
  /** The job's URL, once an answer named it. */
  location: string | undefined
  /** When the latest request went to `fetch` (epoch ms): the floor between requests counts from it. */
  #sentAt = 0

  constructor (settings: Settings, base: Request, signal: AbortSignal) {
    this.#settings = settings
    this.#base = base
    this.#origin = new URL(base.url).origin
    this.#signal = signal
    this.#headers = new Headers(base.headers)
    for (const name of BODY_HEADERS) this.#headers.delete(name)
    signal.addEventListener('abort', this.#onAbort, { once: true })
  }

  /**
   * Notes the job's absolute URL from a status answer (relative to where it came from): only an
   * http(s) URL on the first request's origin or an allowed one, never `data:` or a stranger's.
   */
  locate (status: { location: string }, response: Response): void {
    // A custom fetch may build its responses without a URL: the request's is the base then.
    const url = new URL(status.location, response.url === '' ? this.#base.url : response.url)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`fetchLongRunning: the job's URL ${url.protocol} is not http(s)`)
    if (url.origin !== this.#origin && !this.#settings.allowedOrigins.has(url.origin)) {
      throw new TypeError(`fetchLongRunning: the job's URL is on ${url.origin}, not ${this.#origin}; list it in allowedOrigins to follow it`)
    }
    this.location = url.href
  }

  /**
   * The route's response for a result kept in S3 (`described` by `response`): its status and
   * headers, and the body downloaded from the presigned URL, on whatever origin (as a `303`
   * there would have been followed), with nothing of the caller's (see `downloadRequest`).
   */
  async download (described: DescribedResult, response: Response): Promise<Response> {
    const url = new URL(described.location, response.url === '' ? this.#base.url : response.url)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`fetchLongRunning: the result's URL ${url.protocol} is not http(s)`)
    if (!hasBody(described)) return routeResponse(described, null)
    const download = await this.send(() => downloadRequest(url, this.#signal), true, s3Unavailable)
    if (!download.ok) {
      await download.body?.cancel()
      throw new Error(`fetchLongRunning: the result's body could not be downloaded from ${url.origin}: ${download.status}`)
    }
    return routeResponse(described, download.body)
  }

  /** The call is over: a later abort of the signal no longer concerns the job. */
  settle (): void {
    this.#signal.removeEventListener('abort', this.#onAbort)
  }

  /**
   * A request for the job's status or result: on the first request's origin with its
   * credentials and headers; on an allowed other origin with none of them.
   */
  statusRequest (): Request {
    const own = this.#sameOrigin()
    const headers = new Headers(own ? this.#headers : undefined)
    headers.set('prefer', `respond-async, wait=${this.#settings.waitSeconds}`)
    // Each request follows the call's signal through a controller of its own, unhooked once its
    // status is read: a long job's hundreds of requests leave no listener on the call's signal.
    this.#unhook()
    const controller = new AbortController()
    const forward = (): void => { controller.abort(this.#signal.reason) }
    this.#signal.addEventListener('abort', forward, { once: true })
    this.#unhook = () => { this.#signal.removeEventListener('abort', forward) }
    const like: RequestInit = own ? this.#like() : { credentials: 'omit', mode: 'cors' }
    return new Request(this.#location(), { ...like, headers, redirect: this.#base.redirect, signal: controller.signal })
  }

  /** The latest status request's answer has been read: it needs the call's signal no more. */
  unhook (): void {
    this.#unhook()
  }

  /**
   * Sends `request()`, and again after a network error or an answer that `again` accepts
   * ({@link unavailable}) while `retryable` and retries remain, with back-off and `Retry-After`;
   * the last answer or error is the call's.
   */
  async send (request: () => Request, retryable: boolean, again: (response: Response) => boolean = unavailable): Promise<Response> {
    const retries = retryable ? this.#settings.retries : 0
    let outcome = await this.#attempt(request(), again)
    for (let attempt = 0; outcome.retry && attempt < retries; attempt++) {
      await outcome.response?.body?.cancel()
      await this.pause(outcome.response === undefined ? backoffMs(attempt) : Math.max(backoffMs(attempt), retryAfterMs(outcome.response, 0)))
      outcome = await this.#attempt(request(), again)
    }
    if (outcome.response === undefined) throw outcome.error
    return outcome.response
  }

  /** Waits `ms`, or longer: until {@link MIN_REQUEST_INTERVAL_MS} after the latest request went out. */
  async pause (ms: number): Promise<void> {
    await sleep(Math.max(ms, MIN_REQUEST_INTERVAL_MS - (Date.now() - this.#sentAt)), this.#signal)
  }

  /** One request: its answer or its network error, and whether another try may help. */
  async #attempt (request: Request, again: (response: Response) => boolean): Promise<{ response: Response, retry: boolean } | { response?: undefined, error: unknown, retry: boolean }> {
    try {
      this.#sentAt = Date.now()
      const response = await this.#settings.fetch(request)
      return { response, retry: again(response) }
    } catch (error) {
      // fetch rejects with a TypeError for a network failure, and with the reason on abort.
      if (this.#signal.aborted) throw this.#signal.reason
      return { error, retry: error instanceof TypeError }
    }
  }

  /**
   * Cancels the job (best effort): `DELETE` on its URL, known from `response` when the abort
   * came before the first answer. Never on another origin than the first request's.
   */
  async cancel (response?: Response): Promise<void> {
    if (response !== undefined) {
      const status = await statusOf(response)
      if (status === undefined) return await response.body?.cancel()
      this.locate(status, response)
    }
    if (this.location === undefined || !this.#sameOrigin()) return
    const answer = await this.#settings.fetch(new Request(this.#location(), {
      ...this.#like(), method: 'DELETE', headers: this.#headers, keepalive: true
    }))
    await answer.arrayBuffer()
  }

  /** What the status requests keep of the first: cookies and CORS mode. */
  #like (): RequestInit {
    // Never `navigate`: the Request that `first` was built from with an init is `same-origin` then.
    return { credentials: this.#base.credentials, mode: this.#base.mode }
  }

  #sameOrigin (): boolean {
    return new URL(this.#location()).origin === this.#origin
  }

  #location (): string {
    return this.location as string
  }
}
