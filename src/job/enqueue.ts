import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import { EnqueueFailedError, JobExistsError, QueueFullError } from '../errors.js'
import type { JobQueue } from '../queue/queue.js'
import { retries, withRetries } from '../retry.js'
import type { JobRecord } from '../core/job-state.js'
import type { NewJob, JobStore } from '../store/store.js'
import { newJobId } from '../core/job-id.js'
import { pendingExpiry, type JobTiming } from './lifetime.js'
import type { LocalStarts } from './local-start.js'
import { encodeMessage, type JobMessage } from './message.js'
import type { RequestSnapshot } from '../core/wire.js'

/** What accepting a job needs, resolved once at registration. */
export interface Acceptance {
  store: JobStore
  queue: JobQueue
  resultTtlSeconds: number
  leaseSeconds: number
  clock: Clock
  /** Set in a container that consumes its shared queue: jobs run where they are accepted while slots are free. */
  local?: LocalStarts | undefined
}

/** One request to accept: the request, the route's timing, and what the HTTP side knows of it. */
export interface NewRequest {
  request: RequestSnapshot
  timing: JobTiming
  /** Digest of the `bindTo` value. */
  binding?: string | undefined
  /** The largest Lambda response JSON its front end can return (see `JobMessage`). */
  responseLimit?: number | undefined
}

/** When a job accepted now expires while it has no result. */
export function acceptedExpiry (acceptance: Acceptance, timing: JobTiming): number {
  const { clock, leaseSeconds, resultTtlSeconds, queue } = acceptance
  return pendingExpiry(clock.now(), timing, leaseSeconds, resultTtlSeconds, queue.deliveryWindowSeconds)
}

/** The queue message of job `id`, with the request inside, and whether it fits the queue. */
export function messageOf (acceptance: Acceptance, accepted: NewRequest, id: string): { message: JobMessage, fits: boolean } {
  const { timing, request, responseLimit } = accepted
  const message: JobMessage = {
    id,
    timeoutSeconds: timing.timeoutSeconds,
    maxAttempts: timing.maxAttempts,
    resultTtlSeconds: acceptance.resultTtlSeconds,
    enqueuedAt: acceptance.clock.now(),
    request
  }
  if (responseLimit !== undefined) message.responseLimit = responseLimit
  return { message, fits: Buffer.byteLength(encodeMessage(message)) <= acceptance.queue.maxMessageBytes }
}

/**
 * Accepts a request as a job: records it in the store, then queues its message, and returns
 * the record the store wrote. Either both happen or the client gets
 * `FST_LONG_RUNNING_ENQUEUE_FAILED` (503) and no job is left behind. With `keyedId` (the job an
 * idempotency key reserved), a `JobExistsError` passes through untouched: the job is someone else's to run.
 */
export async function enqueueJob (acceptance: Acceptance, accepted: NewRequest, log: FastifyBaseLogger, keyedId?: string): Promise<JobRecord> {
  const { store, queue, clock, local } = acceptance
  const id = keyedId ?? newJobId()
  const { request, timing, binding } = accepted
  const job: NewJob = { id, waitSeconds: timing.waitSeconds, createdAt: clock.now(), expiresAt: acceptedExpiry(acceptance, timing) }
  if (binding !== undefined) job.binding = binding
  const { message, fits } = messageOf(acceptance, accepted, id)
  if (!fits) {
    // Claim-check: the request waits in the store and the message only points at it.
    job.request = request
    delete message.request
  }
  // Sending again is safe: a duplicate message never runs a job twice (the claim sees to it),
  // while giving up on an answer that was merely lost would turn a queued job into a 503.
  const send = async (body: string, delaySeconds = 0): Promise<void> => await withRetries(async () => await queue.send(body, { delaySeconds }), {
    ...retries.send,
    clock,
    // A full queue is the answer, not a fault: the client hears it at once.
    retryable: error => !(error instanceof QueueFullError),
    onRetry: (error, attempt) => log.warn({ err: error, jobId: id, attempt }, 'queueing the job failed, trying again')
  })
  const slot = keyedId === undefined ? local?.reserve() : undefined
  let record: JobRecord | undefined
  try {
    if (slot === undefined) {
      record = await store.create(job)
      await send(encodeMessage(message))
    } else {
      // Run here (local-start.ts): the record is created claimed, and the backup goes out at
      // the same time, since it stays invisible for a lease. Both must hold before the job
      // starts; a backup whose record failed finds no job and is dropped.
      job.claim = { owner: slot.owner, leaseUntil: slot.leaseUntil }
      const [created, sent] = await Promise.allSettled([store.create(job), send(encodeMessage({ ...message, backup: true }), slot.backupDelaySeconds)])
      if (created.status === 'rejected') throw created.reason
      record = created.value
      if (sent.status === 'rejected') throw sent.reason
    }
  } catch (error) {
    if (slot !== undefined) local?.release()
    if (keyedId !== undefined && record === undefined && error instanceof JobExistsError) throw error
    // No phantom job, even when a write went through but its answer was lost: the client gets
    // a 503 and no id, so nobody would ever wait for it.
    await withRetries(async () => await store.delete(id), {
      ...retries.write,
      clock,
      onRetry: (deleteError, attempt) => log.warn({ err: deleteError, jobId: id, attempt }, 'removing the unqueued job failed, trying again')
    }).catch((deleteError: unknown) => log.error({ err: deleteError, jobId: id }, 'job not removed: it may still run'))
    throw enqueueFailed(error)
  }
  if (slot === undefined) log.debug({ jobId: id }, 'job queued')
  else local?.start(slot, message, request)
  return record
}

/** The 503 `ENQUEUE_FAILED` a client gets, with `Retry-After` (Fastify's error handler sends an error's `headers`). */
export function enqueueFailed (cause?: unknown): Error {
  return Object.assign(new EnqueueFailedError(cause === undefined ? undefined : { cause }), { headers: { 'retry-after': '1' } })
}
