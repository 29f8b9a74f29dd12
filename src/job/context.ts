import { randomBytes } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { JobProgress } from '../store/store.js'

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
  /** Aborted when the job runs past `timeoutSeconds` or the worker shuts down. */
  readonly signal: AbortSignal
  /**
   * Reports progress, shown in the `202` status body. `fraction` from 0 to 1. Writes are
   * coalesced: calling it often costs at most one store write in flight at a time.
   */
  progress (fraction: number, message?: string): void
}

/**
 * The header that marks an injected request as a job run. Its value is a random token that
 * exists only in this process's {@link RunRegistry} while the run lasts, so a client that sends
 * the header cannot make a request pass for a job.
 */
export const RUN_HEADER = 'x-fastify-long-running-run'

/** Runs in progress in this process, by token. */
export class RunRegistry {
  readonly #runs = new Map<string, LongRunningJob>()

  /** Registers a run; returns its token and the function that unregisters it. */
  add (job: LongRunningJob): { token: string, remove: () => void } {
    const token = randomBytes(24).toString('base64url')
    this.#runs.set(token, job)
    return { token, remove: () => this.#runs.delete(token) }
  }

  /**
   * The run this request belongs to, or `null`. Removes the header either way, so that neither
   * user code nor a request snapshot ever sees it.
   */
  take (request: FastifyRequest): LongRunningJob | null {
    const token = request.headers[RUN_HEADER]
    if (token === undefined) return null
    delete request.headers[RUN_HEADER]
    return (typeof token === 'string' && this.#runs.get(token)) || null
  }
}

/** Checks a progress report; a bad one is the handler's bug, so it throws at the call. */
export function checkProgress (fraction: unknown, message: unknown): JobProgress {
  if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= 1)) {
    throw new TypeError(`Expected \`fraction\` to be a number from 0 to 1, got ${String(fraction)}`)
  }
  if (message === undefined) return { fraction }
  if (typeof message !== 'string' || message.length > 1000) {
    throw new TypeError('Expected `message` to be a string of at most 1000 characters')
  }
  return { fraction, message }
}
