import type { FastifyBaseLogger } from 'fastify'
import { retries, withRetries } from '../retry.js'
import type { Clock } from '../clock.js'
import type { JobStore } from '../store/store.js'

/**
 * Removes job `id`, which was recorded but could not be queued: the client gets a 503 and no
 * id, so nobody would ever wait for it, and the record must go (even when a write went through
 * but its answer was lost). Failures are tried again (`retries.write`) and logged.
 *
 * Resolves once the first try is over, or after {@link FIRST_TRY_WAIT_MS}, which is what the
 * 503 waits for: a store that answers removes the job within milliseconds, so that a retry after
 * `Retry-After` finds it gone and its key free. The rest goes on in the background: waiting for a
 * hung store's timeout (Redis: 10 s a try) and the tries after it would hold the answer, already
 * late after the failed sends, towards the timeout of the platform in front, and would free
 * nothing sooner. The record's expiry is the backstop should every try fail.
 *
 * A job a client can find again (`findable`: it has an idempotency key, and its message can be
 * sent again) gets that one try only. Its client's retry with the key attaches to the record
 * and sends its message again (acceptance.ts), so that a record left behind is queued by the
 * retry, not lost; a later try in the background would remove the job under that retry, which
 * was told 202.
 */
const FIRST_TRY_WAIT_MS = 2000

export async function removeUnqueued (store: JobStore, clock: Clock, id: string, log: FastifyBaseLogger, findable = false): Promise<void> {
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
    attempts: findable ? 1 : retries.write.attempts,
    clock,
    onRetry: (error, attempt) => log.warn({ err: error, jobId: id, attempt }, 'removing the unqueued job failed, trying again')
  }).then(
    () => { log.debug({ jobId: id }, 'unqueued job removed') },
    (error: unknown) => {
      if (findable) log.warn({ err: error, jobId: id }, 'unqueued job not removed: a retry with its idempotency key queues it, else it expires')
      else log.error({ err: error, jobId: id }, 'job not removed: it may still run')
    }
  )
  let timer: unknown
  await Promise.race([tried, new Promise<void>(resolve => { timer = clock.setTimeout(resolve, FIRST_TRY_WAIT_MS) })])
  clock.clearTimeout(timer)
}
