import { createHash } from 'node:crypto'
import { Transform, type Readable } from 'node:stream'
import { finished } from 'node:stream/promises'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { Clock } from '../clock.js'
import type { ServerResponse } from 'node:http'
import { EndlessResponseError, InvalidMessageError, JobTimeoutError, ResponseFailedError, ResponseTooLargeError, UploadUnreadableError, WorkerDeadlineError } from '../errors.js'
import { RUN_HEADER, type LongRunningJob, type RunRegistry } from './context.js'
import type { KeptLease } from './lease.js'
import type { RequestSnapshot, UploadedBody } from '../core/wire.js'

/** The route's response as the replay gave it: status, headers and the body as the chunks the route wrote. */
export interface Replayed {
  statusCode: number
  headers: Record<string, string | string[] | number | undefined>
  chunks: Buffer[]
  bytes: number
}

/** How one attempt ended: the route's response, its signal aborted (`reason`), or the replay itself failed. */
export type AttemptEnd =
  | { kind: 'response', response: Replayed }
  | { kind: 'stopped', reason: Error & { code?: string } }
  | { kind: 'failed', error: unknown }

/** What one attempt needs to know and to do besides replaying the request. */
export interface AttemptPlan {
  id: string
  attempt: number
  request: RequestSnapshot
  timeoutSeconds: number
  /** Epoch ms by which the process must be done (a Lambda's deadline): no lease renewals then. */
  deadline?: number
  /** The claim, renewed while the attempt runs without a deadline. */
  lease: KeptLease
  progress: (fraction: number, message?: string) => void
  log: FastifyBaseLogger
  /** The id of the request that queued the job (`JobMessage.requestId`). */
  queuedBy?: string | undefined
  /** The most body bytes a result may have (none: the results bucket takes any size). */
  maxBodyBytes?: number | undefined
  /** Streams the request's uploaded body (`request.upload`) from the bucket. */
  openUpload?: ((upload: UploadedBody, signal: AbortSignal) => Promise<Readable>) | undefined
}

/**
 * One attempt at a job: the original request replayed through the app, with a signal that aborts
 * for the first of its timeout, the worker's deadline, a lost claim, or {@link Attempt.stop}
 * (cancellation, shutdown). The signal's reason is the cause, an error with a stable code. One
 * controller that each cause aborts, first come first served: `AbortSignal.any` over one signal
 * per cause says the same and costs more per attempt on Node 20.
 */
export class Attempt {
  readonly id: string
  readonly #plan: AttemptPlan
  readonly #app: FastifyInstance
  readonly #runs: RunRegistry
  readonly #clock: Clock
  readonly #stop = new AbortController()
  /** The run's entry in the registry, removed as soon as the attempt ends, even if the handler goes on. */
  #registration: { remove (): void } | undefined
  /** The replay's response, once the route wrote to it: cut when the attempt stops. */
  #response: ServerResponse | undefined
  /** The request's body streamed from the bucket: its connection goes with the attempt, read to the end or not. */
  #upload: Readable | undefined

  constructor (app: FastifyInstance, runs: RunRegistry, clock: Clock, plan: AttemptPlan) {
    this.id = plan.id
    this.#app = app
    this.#runs = runs
    this.#clock = clock
    this.#plan = plan
  }

  /** Aborts the attempt with `reason` (a cancellation or a shutdown); the first reason stays. */
  stop (reason: Error): void {
    if (!this.#stop.signal.aborted) this.#stop.abort(reason)
  }

  /** Runs the attempt; resolves with how it ended (never rejects), its timers and lease let go. */
  async run (): Promise<AttemptEnd> {
    const timers = this.#arm()
    const signal = this.#stop.signal
    let onAbort: (() => void) | undefined
    try {
      const stopped = new Promise<AttemptEnd>(resolve => {
        onAbort = () => resolve({ kind: 'stopped', reason: signal.reason })
        if (signal.aborted) onAbort()
        else signal.addEventListener('abort', onAbort, { once: true })
      })
      const end = await Promise.race([this.#replay(signal), stopped])
      // A stopped attempt's body is kept by nobody: the route's stream is cut, so that it stops
      // producing (a timeout, a cancellation, a cut for size alike).
      if (end.kind === 'stopped') this.#response?.destroy()
      this.#upload?.destroy()
      return end
    } finally {
      this.#registration?.remove()
      this.#plan.lease.stop()
      for (const timer of timers) this.#clock.clearTimeout(timer)
      if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
    }
  }

  /** Arms the attempt's time limits, and keeps its claim where no deadline ends it anyway. */
  #arm (): unknown[] {
    const plan = this.#plan
    const clock = this.#clock
    const timers = [clock.setTimeout(() => this.stop(new JobTimeoutError(plan.timeoutSeconds)), plan.timeoutSeconds * 1000)]
    if (plan.deadline !== undefined) {
      // Leave a second to release the claim before the platform kills the process.
      timers.push(clock.setTimeout(() => this.stop(new WorkerDeadlineError()), Math.max(0, plan.deadline - clock.now() - 1000)))
    } else {
      // With a deadline (Lambda) the claim simply lasts until then: no renewals to pay for.
      // Without, the claim lost (cancelled elsewhere, taken over, or lapsed with the store out of
      // reach) stops the attempt at once: another worker may be running the job from then on.
      plan.lease.keep(reason => this.stop(reason))
    }
    return timers
  }

  /** Replays the request through the app; resolves with the route's response or the replay's failure. */
  async #replay (signal: AbortSignal): Promise<AttemptEnd> {
    const plan = this.#plan
    const job: LongRunningJob = { id: plan.id, attempt: plan.attempt, signal, progress: plan.progress }
    // The body's chunks as the route wrote them: through the run's sink once the plugin's onRequest
    // hook installed it (every ordinary run), through light-my-request's stream if a hook before
    // it answered (a rate limit's 429, say). Either way, one list in order.
    const chunks: Buffer[] = []
    let bytes = 0
    let refused = false
    const collect = (chunk: Buffer, response?: ServerResponse): void => {
      if (refused) return
      this.#response ??= response
      const refusal = this.#refusal(bytes, chunk.length, response)
      if (refusal !== undefined) {
        // The job ends now, with this error, rather than once the stream stops (maybe never):
        // the stream is cut, so that the route stops writing into a result nobody keeps.
        refused = true
        this.stop(refusal)
        return
      }
      chunks.push(chunk)
      bytes += chunk.length
    }
    const { request } = plan
    let body: { payload?: Buffer | Readable, headers: RequestSnapshot['headers'] }
    try {
      body = await this.#body(request, signal)
    } catch (error) {
      return { kind: 'failed', error }
    }
    const { payload, headers } = body
    const registration = this.#runs.add({ job, request: plan.request, body: collect, queuedBy: plan.queuedBy })
    this.#registration = registration
    return await this.#app.inject({
      method: request.method as 'GET',
      url: request.url,
      headers: { ...headers, [RUN_HEADER]: registration.token },
      // From the client's address, so that per-client hooks (rate limits, logs) see the client.
      ...(request.origin === undefined ? {} : { remoteAddress: request.origin.ip }),
      ...(payload === undefined ? {} : { payload }),
      // A stream rather than a payload: light-my-request would otherwise join the chunks into
      // one buffer and decode that into a string too, holding a 50 MiB result three times.
      payloadAsStream: true
    }).then(
      async (response): Promise<AttemptEnd> => {
        // Events rather than an async iterator: cheaper per job, which matters for tiny ones.
        const body = response.stream()
        body.on('data', collect)
        try {
          await finished(body)
        } catch (error) {
          // The route's stream failed after its head was written: synchronously its client would
          // see the connection cut. The job ends with the error, once; it is no worker's crash.
          return { kind: 'stopped', reason: new ResponseFailedError((error as Error).message) }
        }
        return { kind: 'response', response: { statusCode: response.statusCode, headers: response.headers, chunks, bytes } }
      },
      (error: unknown): AttemptEnd => ({ kind: 'failed', error })
    )
  }

  /** The request's body and headers for the replay: an uploaded body streamed, with its length. */
  async #body (request: RequestSnapshot, signal: AbortSignal): Promise<{ payload?: Buffer | Readable, headers: RequestSnapshot['headers'] }> {
    if (request.upload === undefined) return { ...(request.body === undefined ? {} : { payload: request.body }), headers: request.headers }
    const payload = await this.#openUpload(request.upload, signal)
    // The length a parser checks against its limit before reading, as the client declared it.
    return { payload, headers: { ...request.headers, 'content-length': String(request.upload.bytes) } }
  }

  /**
   * The uploaded body, streamed from the bucket to the route, checked against the SHA-256 the
   * HTTP side computed: an object replaced in the bucket fails the request's stream at its end,
   * as a cut upload would, rather than passing for the client's.
   */
  async #openUpload (upload: UploadedBody, signal: AbortSignal): Promise<Readable> {
    const open = this.#plan.openUpload
    if (open === undefined) throw new UploadUnreadableError(upload.key)
    const source = await open(upload, signal)
    this.#upload = source
    const hash = createHash('sha256')
    const checked = new Transform({
      transform (chunk: Buffer, _encoding, callback) {
        hash.update(chunk)
        callback(null, chunk)
      },
      flush (callback) {
        callback(hash.digest('base64url') === upload.sha256 ? null : new InvalidMessageError('the uploaded body does not match its digest'))
      }
    })
    source.once('error', (error: Error) => checked.destroy(error))
    return source.pipe(checked)
  }

  /**
   * Why the body must stop at this chunk, if it must: an event stream (SSE, or a
   * `multipart/x-mixed-replace` camera feed) never ends (seen at its first byte), and a body past what a result may have will never be kept.
   */
  #refusal (bytes: number, more: number, response: ServerResponse | undefined): Error | undefined {
    const type = bytes === 0 ? response?.getHeader('content-type') : undefined
    const endless = typeof type === 'string' ? /^\s*(text\/event-stream|multipart\/x-mixed-replace)\s*(;|$)/i.exec(type)?.[1] : undefined
    if (endless !== undefined) return new EndlessResponseError(`an event stream (${endless.toLowerCase()}) never does`)
    const limit = this.#plan.maxBodyBytes
    return limit !== undefined && bytes + more > limit ? new ResponseTooLargeError(bytes + more, limit) : undefined
  }
}
