import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import { BackendError, ResponseTooLargeError } from '../errors.js'
import type { Disposition } from '../queue/queue.js'
import { heldWriteBackoff, retries, withRetries, type Backoff } from '../retry.js'
import type { ResultBodies } from '../results/results.js'
import type { JobStore } from '../store/store.js'
import type { StoredResponse, UploadedBody } from '../core/wire.js'
import type { Replayed } from './attempt.js'
import type { Lease } from './lease.js'
import { resultExpiry } from './lifetime.js'
import type { JobMessage } from './message.js'
import { JobOutcome, type JobEndEvent } from './outcome.js'
import { errorResponse } from '../core/error-response.js'
import { keepHeaders, placeResult } from './response.js'

/** Acknowledged: the store holds the job's final response, or the job is not this message's to run. */
export const ACK: Disposition = { ack: true }
/** Back to the queue at once: this attempt stopped for reasons of its own process. */
export const AGAIN: Disposition = { ack: false, delaySeconds: 0 }

/** What finishing a job needs, resolved once at registration. */
export interface FinishSettings {
  store: JobStore
  clock: Clock
  leaseSeconds: number
  /** Redelivery of a message whose handling failed, by receive count. */
  redelivery: Backoff
  onJobEnd?: ((event: JobEndEvent) => void) | undefined
  /** Where bodies too large for the store or the front end go (`results`); without it they end as a 502. */
  results?: ResultBodies | undefined
  /** Told of every final response this process stored: its waiting requests need not read it. */
  onStored?: ((id: string, response: StoredResponse, expiresAt: number) => void) | undefined
}

/** One attempt's job as finishing it sees it: its message, the claim, and the attempt. */
export interface Finishing {
  message: JobMessage
  owner: string
  lease: Lease
  attempt: number
  startedAt: number
  /** The delivery's receive count, for the back-off of a failed upload. */
  receiveCount: number
  log: FastifyBaseLogger
  /** The request's body in the bucket, removed when the job ends. */
  upload?: UploadedBody
  /** Aborts when the worker shuts down: a result that cannot be stored by then goes back with its message. */
  stopping: AbortSignal
}

/** Places a route's response (the store, the results bucket, or too large), and stores it. */
export async function finishWithResponse (settings: FinishSettings, job: Finishing, replayed: Replayed): Promise<Disposition> {
  const head = { statusCode: replayed.statusCode, headers: keepHeaders(replayed.headers) }
  const placed = placeResult(head, replayed, job.message.responseLimit, settings.results?.thresholdBytes)
  if (placed.kind === 'outside') return await storeOutside(settings, job, head, placed.chunks)
  if (placed.kind === 'stored') return await finish(settings, job, placed.response, JobOutcome.completed)
  job.log.warn({ bytes: placed.bytes, limit: placed.limit }, 'job result too large')
  return await finish(settings, job, errorResponse(new ResponseTooLargeError(placed.bytes, placed.limit)), JobOutcome.tooLarge)
}

/**
 * Puts the body in the results store and stores the response that names it. A failed upload
 * is a failed attempt: the claim goes back and the job runs again.
 */
async function storeOutside (settings: FinishSettings, job: Finishing, head: Omit<StoredResponse, 'body'>, chunks: readonly Buffer[]): Promise<Disposition> {
  let external
  try {
    external = await (settings.results as ResultBodies).put(job.message.id, job.owner, chunks, head.headers)
  } catch (error) {
    job.log.error({ err: error, bytes: chunks.reduce((sum, chunk) => sum + chunk.length, 0) }, 'storing the result body outside failed')
    await job.lease.end()
    return { ack: false, delaySeconds: settings.redelivery.delaySeconds(job.receiveCount) }
  }
  return await finish(settings, job, { ...head, body: Buffer.alloc(0), external }, JobOutcome.completed)
}

/**
 * Stores the final response. If the claim was lost meanwhile, the newer attempt decides.
 * A failing write is tried again here before the message goes back: the response may have
 * taken minutes to compute, and only this process holds it (see {@link completed}).
 */
export async function finish (settings: FinishSettings, job: Finishing, response: StoredResponse, outcome: JobOutcome): Promise<Disposition> {
  const { store, clock } = settings
  // The job's own logger: its lines carry the job and the request that queued it.
  const { message, log } = job
  const expiresAt = resultExpiry(clock.now(), message.resultTtlSeconds)
  const stored = await completed(settings, job, async () => await store.complete(message.id, job.owner, response, expiresAt))
  if (!stored) return { ack: false, delaySeconds: Math.ceil(settings.leaseSeconds) }
  settings.onStored?.(message.id, response, expiresAt)
  await discardUpload(settings, job)
  const event: JobEndEvent = { id: message.id, statusCode: response.statusCode, attempt: job.attempt, startedAt: job.startedAt, outcome, endedAt: clock.now() }
  if (message.enqueuedAt !== undefined) event.queuedAt = message.enqueuedAt
  log.info({ job: event }, 'job ended')
  try {
    settings.onJobEnd?.(event)
  } catch (error) {
    // A metrics hook must never decide a job's fate.
    log.error({ err: error }, 'onJobEnd threw')
  }
  return ACK
}

/** The job is over: its request's uploaded body goes (a failure leaves it to the bucket's lifecycle rule). */
async function discardUpload (settings: FinishSettings, job: Finishing): Promise<void> {
  const { upload, log } = job
  if (upload === undefined || settings.results?.discard === undefined) return
  await settings.results.discard(upload).catch((error: unknown) => log.warn({ err: error, key: upload.key }, 'removing the job\'s uploaded request body failed; the bucket\'s lifecycle rule will'))
}

/**
 * Runs `complete` until the store answers. Tried a few times whatever failed (`retries.write`);
 * past those, a store that is unreachable (`FST_LONG_RUNNING_BACKEND`) is tried on for as long as
 * this worker's claim holds, its lease renewed meanwhile: a job whose claim is held runs nowhere
 * else, so a result that gets through within the lease costs no second run. The tries end, and
 * the attempt has failed, once the claim is lost (refused, or a whole lease passed without a
 * renewal getting through: another worker may take the job over), once the job's timeout has
 * passed again, or at shutdown. The claim is then given back, and the message comes back.
 */
async function completed (settings: FinishSettings, job: Finishing, complete: () => Promise<boolean>): Promise<boolean> {
  const { clock } = settings
  const { lease, log, stopping } = job
  const triesEnd = clock.now() + job.message.timeoutSeconds * 1000
  try {
    return await lease.keeping(async () => await withRetries(complete, {
      ...retries.write,
      backoff: heldWriteBackoff(settings.leaseSeconds),
      clock,
      signal: stopping,
      beyond: error => error instanceof BackendError && !stopping.aborted && lease.holds(clock.now()) && clock.now() < triesEnd,
      onRetry: (error, attempt) => log.warn({ err: error, attempt }, 'storing the result failed, trying again')
    }))
  } catch (error) {
    await lease.end()
    throw error
  }
}
