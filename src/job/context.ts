import { randomBytes } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { InvalidProgressError } from '../errors.js'
import type { JobProgress } from '../core/job-state.js'
import type { BodySink } from './body-sink.js'
import type { RequestSnapshot } from '../core/wire.js'

/**
 * What a handler sees as `request.longRunning` while it runs as a job (`null` otherwise).
 *
 * @example
 * app.post('/report', { longRunning: true }, async (request) => {
 *   const job = request.longRunning!
 *   for (const [i, part] of parts.entries()) {
 *     if (job.signal.aborted) throw job.signal.reason
 *     await render(part, { signal: job.signal })
 *     job.progress((i + 1) / parts.length, `part ${i + 1}`)
 *   }
 * })
 */
export interface LongRunningJob {
  /** The job id, as in `/async-response/:id`. */
  readonly id: string
  /** 1 on the first attempt; higher when an earlier worker crashed. */
  readonly attempt: number
  /**
   * Aborted when the attempt must stop; `signal.reason` says why, with a stable `code`:
   * `FST_LONG_RUNNING_JOB_TIMEOUT` (past `timeoutSeconds`: the job ends with 504),
   * `FST_LONG_RUNNING_JOB_CANCELLED` (`DELETE /async-response/:id`, in this process at once, in
   * another at this worker's next lease renewal),
   * `FST_LONG_RUNNING_WORKER_STOPPING` (this process is closing),
   * `FST_LONG_RUNNING_WORKER_DEADLINE` (the Lambda function is about to time out) or
   * `FST_LONG_RUNNING_LEASE_LOST` (another worker took the job over, or the lease lapsed with the
   * store out of reach: another worker may take it over from then on). In the last three cases the
   * job goes back to the queue for another attempt, and what the handler answers is not stored.
   */
  readonly signal: AbortSignal
  /**
   * Reports progress, shown in the `202` status body. `fraction` from 0 to 1. Writes are
   * coalesced: the first report is stored at once, then at most one a second (the latest;
   * a repeat of the stored value is none), and the last one before the job's result.
   */
  progress (fraction: number, message?: string): void
}

/**
 * The header that marks an injected request as a job run. Its value is a random token that
 * exists only in this process's {@link RunRegistry} while the run lasts, so a client that sends
 * the header cannot make a request pass for a job.
 */
export const RUN_HEADER = 'x-fastify-long-running-run'

const kRun = Symbol('fastify-long-running.run')

/** One run in progress: the job, the request as the HTTP side saw it, and where its response body goes. */
export interface Run {
  job: LongRunningJob
  request: RequestSnapshot
  body: BodySink
  /** The id of the request that queued the job, for the run's log lines. */
  queuedBy?: string | undefined
}

/** Runs in progress in this process, by token. */
export class RunRegistry {
  readonly #runs = new Map<string, Run>()

  /** True while no run is in progress in this process: every request is then a client's. */
  get idle (): boolean {
    return this.#runs.size === 0
  }

  /** Registers a run; returns its token and the function that unregisters it. */
  add (run: Run): { token: string, remove: () => void } {
    const token = randomBytes(24).toString('base64url')
    this.#runs.set(token, run)
    return { token, remove: () => this.#runs.delete(token) }
  }

  /**
   * The run this request belongs to, or `null`: `request.longRunning`, resolved on first use
   * whichever hook asks first, then kept. Resolving removes the run header (neither user code
   * after it nor a request snapshot sees it) and gives a job run the HTTP side's view of the
   * request: its `ip`, `protocol`, `host` and `hostname`, and the values `carry` returned.
   */
  resolve (request: FastifyRequest): LongRunningJob | null {
    return this.runOf(request)?.job ?? null
  }

  /** The run `request` belongs to, or `null` (see {@link RunRegistry.resolve}). */
  runOf (request: FastifyRequest): Run | null {
    const cached = (request as unknown as Record<symbol, Run | null | undefined>)[kRun]
    if (cached !== undefined) return cached
    const token = request.headers[RUN_HEADER]
    // Every request of the app passes here: an ordinary one costs a header lookup, no write.
    if (token === undefined) return null
    delete request.headers[RUN_HEADER]
    const run = (typeof token === 'string' ? this.#runs.get(token) : undefined) ?? null
    ;(request as unknown as Record<symbol, Run | null>)[kRun] = run
    if (run !== null) adopt(request, run.request)
    return run
  }
}

/** Makes a replayed request look, to the route, like the one the HTTP side accepted. */
function adopt (request: FastifyRequest, snapshot: RequestSnapshot): void {
  const { origin, carried } = snapshot
  if (origin !== undefined) {
    const hostname = origin.host.startsWith('[') ? origin.host.slice(0, origin.host.indexOf(']') + 1) : origin.host.split(':')[0]
    const port = /:(\d+)$/.exec(origin.host)?.[1]
    for (const [name, value] of Object.entries({ ip: origin.ip, protocol: origin.protocol, host: origin.host, hostname, port: port === undefined ? null : Number(port) })) {
      Object.defineProperty(request, name, { value, configurable: true, enumerable: true })
    }
  }
  // Each key defined on the request itself (never through a setter, never its prototype); the
  // keys were checked where the job was accepted and where its message was read.
  for (const [name, value] of Object.entries(carried ?? {})) {
    Object.defineProperty(request, name, { value, writable: true, configurable: true, enumerable: true })
  }
}

/**
 * Whether `request` is a job run (a replay on the worker side) rather than a client's request:
 * the one place that answers it, from the run marker the plugin resolved.
 */
export function isJobRun (request: FastifyRequest): boolean {
  return (request as { longRunning?: LongRunningJob | null }).longRunning != null
}

/** Checks a progress report; a bad one is the handler's bug, so it throws at the call. */
export function checkProgress (fraction: unknown, message: unknown): JobProgress {
  if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= 1)) {
    throw new InvalidProgressError(`\`fraction\` to be a number from 0 to 1, got ${String(fraction)}`)
  }
  if (message === undefined) return { fraction }
  if (typeof message !== 'string' || message.length > 1000) {
    throw new InvalidProgressError('`message` to be a string of at most 1000 characters')
  }
  return { fraction, message }
}
