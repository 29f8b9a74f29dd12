import type { FastifyBaseLogger } from 'fastify'
import { retries, withRetries } from '../retry.js'
import type { Clock } from '../clock.js'
import type { JobStore } from '../store/store.js'

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
