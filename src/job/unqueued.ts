import type { FastifyBaseLogger } from 'fastify'
import { EnqueueFailedError } from '../errors.js'
import type { JobQueue } from '../queue/queue.js'
import { retries, withRetries } from '../retry.js'
import type { Clock } from '../clock.js'
import type { JobStore } from '../store/store.js'

/** The 503 `ENQUEUE_FAILED` a client gets, with `Retry-After` (Fastify's error handler sends an error's `headers`). */
export function enqueueFailed (cause?: unknown): Error {
  return Object.assign(new EnqueueFailedError(cause === undefined ? undefined : { cause }), { headers: { 'retry-after': '1' } })
}

/** The 503s whose job stays in the store for the retry with its key (see {@link unqueued}). */
const keptJobs = new WeakSet<object>()

/** Whether `error` refused a request whose job stays for the retry with its key: its uploaded body stays with it. */
export function keptForRetry (error: unknown): boolean {
  return typeof error === 'object' && error !== null && keptJobs.has(error)
}

/**
 * What becomes of job `id`, recorded but not queued (`error`); resolves to the error to answer
 * with. A keyed job stays, for the client's retry with its key: that retry attaches to it and
 * sends its message again (acceptance.ts, `resend`). Removing it could pull the job from under
 * a retry that attached meanwhile, and a removal that timed out may still reach the store later
 * (a command sent again once its connection is back, a paused server reading its input). Any
 * other job is removed ({@link removeUnqueued}), as is a keyed one of an in-process queue,
 * which nothing would send again.
 */
export async function unqueued (settings: { store: JobStore, queue: JobQueue, clock: Clock }, id: string, key: string | undefined, error: unknown, log: FastifyBaseLogger): Promise<unknown> {
  if (key === undefined || settings.queue.inProcess === true) {
    await removeUnqueued(settings.store, settings.clock, id, log)
    return error
  }
  log.warn({ err: error, jobId: id }, 'job not queued: kept for a retry with its idempotency key, which queues it (a send that timed out may still queue it); else it expires')
  const refused = enqueueFailed(error)
  keptJobs.add(refused)
  return refused
}

/**
 * Removes job `id`, which was recorded but could not be queued: the client gets a 503 and no
 * id, so nobody would ever wait for it, and the record must go (even when a write went through
 * but its answer was lost). Failures are tried again (`retries.write`) and logged.
 *
 * Resolves once the first try is over, which is what the 503 waits for: a store that answers
 * removes the job within milliseconds, so that a retry after `Retry-After` finds it gone and its
 * key free. The tries after a failure go on in the background: waiting for them would hold the
 * answer for each try's back-off and timeout (a hung Redis: 10 s a try) past the timeout of the
 * platform in front. The record's expiry is the backstop should they all fail.
 */
export async function removeUnqueued (store: JobStore, clock: Clock, id: string, log: FastifyBaseLogger): Promise<void> {
  let firstTry = (): void => {}
  const tried = new Promise<void>(resolve => { firstTry = resolve })
  void withRetries(async () => {
    try {
      await store.delete(id)
    } finally {
      firstTry()
    }
  }, {
    ...retries.write,
    clock,
    onRetry: (error, attempt) => log.warn({ err: error, jobId: id, attempt }, 'removing the unqueued job failed, trying again')
  }).then(
    () => { log.debug({ jobId: id }, 'unqueued job removed') },
    (error: unknown) => { log.error({ err: error, jobId: id }, 'job not removed: it may still run') }
  )
  await tried
}
