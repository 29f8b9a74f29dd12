import type { Disposition } from '../queue/queue.js'
import { BackendError, EndlessResponseError, InvalidMessageError, JobCancelledError, JobTimeoutError, LeaseLostError, ResponseFailedError, ResponseTooLargeError, UploadMissingError, UploadUnreadableError, WorkerDeadlineError } from '../errors.js'
import type { AttemptEnd } from './attempt.js'
import { ACK, AGAIN, finish, finishWithResponse, type FinishSettings, type Finishing } from './finish.js'
import { JobOutcome } from './outcome.js'
import { errorResponse } from '../core/error-response.js'

/**
 * What happens to a job's message once an attempt at it ended: its response is placed and
 * stored; a timeout is the job's end (a 504 stored, never retried), as is a body cut as it
 * streamed (too large, or an event stream); a cancelled job's message is
 * acknowledged (its record already holds the cancellation); every other stop hands it back at once.
 * `deadline` is the delivery's (a Lambda's), for the log.
 */
export async function dispositionOf (end: AttemptEnd, job: Finishing, settings: FinishSettings, deadline?: number): Promise<Disposition> {
  const { log } = job
  if (end.kind === 'response') return await finishWithResponse(settings, job, end.response)
  if (end.kind === 'failed') return await failedReplay(end.error, job, settings)
  const { reason } = end
  if (reason instanceof JobTimeoutError || reason instanceof WorkerDeadlineError) {
    // The platform's deadline is this attempt's time limit too: another attempt would only
    // run out of time again (and be billed for it), so the job ends here as a timeout.
    const timeout = reason instanceof JobTimeoutError ? reason : new JobTimeoutError(Math.round((settings.clock.now() - job.startedAt) / 1000))
    log.warn({ timeoutSeconds: job.message.timeoutSeconds, deadline }, 'job timed out')
    return await finish(settings, job, errorResponse(timeout), JobOutcome.timedOut)
  }
  const cut = reason instanceof ResponseTooLargeError ? JobOutcome.tooLarge : reason instanceof EndlessResponseError ? JobOutcome.endless : reason instanceof ResponseFailedError ? JobOutcome.failed : undefined
  if (cut !== undefined) {
    // The body was cut (or failed) as it streamed: the handler ran, and another attempt would
    // only run it again.
    log.warn({ reason: reason.code }, reason.message)
    return await finish(settings, job, errorResponse(reason as Error & { code: string }), cut)
  }
  if (reason instanceof JobCancelledError) {
    log.info('job cancelled while running')
    return ACK
  }
  log.warn({ reason: reason.code }, 'job attempt stopped, message returned to the queue')
  // A lost claim is someone else's now: nothing to give back.
  if (!(reason instanceof LeaseLostError)) await job.lease.end()
  return AGAIN
}

/**
 * The replay could not start. Its uploaded body gone from the bucket, named wrongly, or in a
 * bucket this worker was not given: the job ends (no attempt could read it). The bucket unreachable: retried after the redelivery back-off, as a failed
 * upload of a result is. Anything else (the app is closing): not the handler's doing, retried at once.
 */
async function failedReplay (error: unknown, job: Finishing, settings: FinishSettings): Promise<Disposition> {
  if (error instanceof UploadUnreadableError) {
    // The worker's configuration, not the job: said as such, once, rather than attempts that fail alike.
    job.log.error({ err: error }, 'job request body was uploaded to a bucket, and this worker has no `results` bucket to read it from: the job ends; its upload is left to the bucket\'s lifecycle rule')
    return await finish(settings, job, errorResponse(error as Error & { code: string }), JobOutcome.failed)
  }
  if (error instanceof UploadMissingError || error instanceof InvalidMessageError) {
    job.log.error({ err: error }, 'job request body missing from the bucket, or not the job\'s')
    return await finish(settings, job, errorResponse(error as Error & { code: string }), JobOutcome.failed)
  }
  job.log.error({ err: error }, 'job replay failed')
  await job.lease.end()
  return error instanceof BackendError ? { ack: false, delaySeconds: settings.redelivery.delaySeconds(job.receiveCount) } : AGAIN
}
