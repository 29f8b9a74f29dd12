import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import { EnqueueFailedError, JobExistsError, QueueFullError, ValueTooLargeError } from '../errors.js'
import type { JobQueue } from '../queue/queue.js'
import { retries, withRetries } from '../retry.js'
import { enqueueFailed, unqueued } from './unqueued.js'
import { JobStatus, type JobRecord } from '../core/job-state.js'
import type { NewJob, JobStore } from '../store/store.js'
import { newJobId } from '../core/job-id.js'
import { pendingExpiry, type JobTiming } from './lifetime.js'
import type { LocalSlot, LocalStarts } from './local-start.js'
import { encodeMessage, messageDigest, messageJson, type JobMessage } from './message.js'
import type { RequestSnapshot } from '../core/wire.js'

/**
 * Accepting a request as a job, once: record it in the store and queue its message (or run it
 * here, `local-start.ts`), and with an idempotency key, at most once per key across processes.
 */

/** What accepting a job needs, resolved once at registration. */
export interface AcceptSettings {
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
  /** The job's id, when the HTTP side named it already (an upload's key holds it). */
  id?: string | undefined
  request: RequestSnapshot
  timing: JobTiming
  /** Digest of the `bindTo` value. */
  binding?: string | undefined
  /** The largest Lambda response JSON its front end can return (see `JobMessage`). */
  responseLimit?: number | undefined
  /** The HTTP request's id, for the job run's log lines (see `JobMessage`). */
  requestId?: string | undefined
}

/** An idempotency key as the job layer sees it: digests only. */
export interface KeyedRequest {
  /** Digest of the key with its scope (route, caller). */
  key: string
  /** Digest of the request (method, path, query, content type, body). */
  fingerprint: string
}

/** What became of a keyed request: a new job, the key's existing job, or a key reused with another request. */
export type KeyedAcceptance =
  | { kind: 'created', record: JobRecord }
  | { kind: 'attached', record: JobRecord }
  | { kind: 'mismatch' }

/**
 * Rounds of "read the key's job, else create it": a job that vanishes between the two (its
 * enqueue failed and removed it, or it expired) is created again at most this often.
 */
const MAX_ROUNDS = 3

/**
 * Accepts a request as a job: records it in the store, then queues its message, and returns
 * the record the store wrote. Either both happen or the client gets
 * `FST_LONG_RUNNING_ENQUEUE_FAILED` (503) and no job is left behind (removed before the answer,
 * or after it when the first try fails: see `unqueued.ts`); a request larger
 * than the store keeps gets `FST_LONG_RUNNING_VALUE_TOO_LARGE` (413).
 */
export async function acceptJob (settings: AcceptSettings, accepted: NewRequest, log: FastifyBaseLogger): Promise<JobRecord> {
  try {
    return await createJob(settings, accepted, accepted.id ?? newJobId(), log, settings.local)
  } catch (error) {
    throw refusal(error)
  }
}

/**
 * Accepts a request that carries an idempotency key, running the handler at most once per key
 * across processes: the key is reserved first (one conditional write names the job), then the
 * job is created under the reserved id (one conditional write on that id). Whoever finds the
 * reservation but not the job creates it, so that a crash between the two writes loses nothing
 * and the next request with the key queues the job; the id's own condition lets only one
 * create it, and everyone else attaches to it. Keyed jobs always take the queue: their record
 * may be someone else's.
 */
export async function acceptKeyed (settings: AcceptSettings, accepted: NewRequest, keyed: KeyedRequest, log: FastifyBaseLogger): Promise<KeyedAcceptance> {
  const { store } = settings
  const mine = accepted.id ?? newJobId()
  const holder = await store.reserveKey({ key: keyed.key, jobId: mine, fingerprint: keyed.fingerprint, expiresAt: acceptedExpiry(settings, accepted.timing) })
  if (holder.fingerprint !== keyed.fingerprint) return { kind: 'mismatch' }
  for (let round = 0; round < MAX_ROUNDS; round++) {
    if (round > 0 || holder.jobId !== mine) {
      const record = await store.get(holder.jobId)
      if (record !== undefined) {
        await resend(settings, accepted, record)
        return { kind: 'attached', record }
      }
    }
    try {
      return { kind: 'created', record: await createJob(settings, accepted, holder.jobId, log, undefined, keyed.key) }
    } catch (error) {
      // The job is someone else's now: read it in the next round and attach to it.
      if (!(error instanceof JobExistsError)) throw refusal(error)
    }
  }
  throw enqueueFailed()
}

/**
 * What the client hears when its request was not accepted: a request too large for the store
 * is its own fault, and stays the `413` `FST_LONG_RUNNING_VALUE_TOO_LARGE` that `redisStore`
 * documents (trying again would not help); every other failure is the backend's: a 503.
 */
function refusal (error: unknown): Error {
  return error instanceof ValueTooLargeError || error instanceof EnqueueFailedError ? error : enqueueFailed(error)
}

/**
 * Creates job `id` (with the digest of the idempotency `key` it stands for, if any) and queues
 * its message, or runs it here while `local` has a slot free.
 * Either both happen or neither does: on a failure the job is removed (unless another request
 * created it first: `JobExistsError`) and the error thrown; the answer waits for the removal's
 * first try only (`unqueued.ts`).
 */
async function createJob (settings: AcceptSettings, accepted: NewRequest, id: string, log: FastifyBaseLogger, local: LocalStarts | undefined, key?: string): Promise<JobRecord> {
  const { clock } = settings
  const { request, timing, binding } = accepted
  const job: NewJob = { id, waitSeconds: timing.waitSeconds, createdAt: clock.now(), expiresAt: acceptedExpiry(settings, timing) }
  if (binding !== undefined) job.binding = binding
  // The store shortens the key's reservation to the result's expiry when the job ends.
  if (key !== undefined) job.key = key
  const { message, fits } = messageOf(settings, accepted, id)
  if (!fits || pointsOnly(settings, key)) {
    // Claim-check: the request waits in the store and the message only points at it.
    job.request = request
    delete message.request
  }
  // Only this message may claim the job (a worker checks it): not one another queue writer sends.
  job.messageDigest = messageDigest(messageJson(message))
  const slot = local?.reserve()
  let record: JobRecord | undefined
  try {
    record = slot === undefined ? await createQueued(settings, job, message, log) : await createClaimed(settings, job, message, slot, log)
  } catch (error) {
    if (slot !== undefined) local?.freeSlot()
    // Another request's job, or a request refused before anything was written: nothing to remove.
    if (error instanceof JobExistsError || error instanceof ValueTooLargeError) throw error
    throw await unqueued(settings, id, key, error, log)
  }
  if (slot === undefined) log.debug({ jobId: id }, 'job queued')
  else local?.start(slot, message, request)
  return record
}

async function createQueued (settings: AcceptSettings, job: NewJob, message: JobMessage, log: FastifyBaseLogger): Promise<JobRecord> {
  const record = await settings.store.create(job)
  await send(settings, encodeMessage(message), 0, job.id, log)
  return record
}

/**
 * Run here (local-start.ts): the record is created claimed, and the backup goes out at the same
 * time, since it stays invisible for a lease. Both must hold before the job starts; a backup
 * whose record failed finds no job and is dropped.
 */
async function createClaimed (settings: AcceptSettings, job: NewJob, message: JobMessage, slot: LocalSlot, log: FastifyBaseLogger): Promise<JobRecord> {
  job.claim = { owner: slot.owner, leaseUntil: slot.leaseUntil }
  const backup = encodeMessage({ ...message, backup: true })
  const [created, sent] = await Promise.allSettled([settings.store.create(job), send(settings, backup, slot.backupDelaySeconds, job.id, log)])
  if (created.status === 'rejected') throw created.reason
  if (sent.status === 'rejected') throw sent.reason
  return created.value
}

/**
 * Sending again is safe: a duplicate message never runs a job twice (the claim sees to it),
 * while giving up on an answer that was merely lost would turn a queued job into a 503.
 */
async function send (settings: AcceptSettings, body: string, delaySeconds: number, id: string, log: FastifyBaseLogger): Promise<void> {
  await withRetries(async () => await settings.queue.send(body, { delaySeconds }), {
    ...retries.send,
    clock: settings.clock,
    // A full queue is the answer, not a fault: the client hears it at once.
    retryable: error => !(error instanceof QueueFullError),
    onRetry: (error, attempt) => log.warn({ err: error, jobId: id, attempt }, 'queueing the job failed, trying again')
  })
}

/**
 * Whether a job's message only points at its request, kept in the store. A store that counts
 * its memory (the embedded default) keeps every request: a queued job's bytes then count
 * against its budget, where a message in the in-memory queue would hold them uncounted. A keyed
 * job's does too: a retry that sends its message again (`resend`) then sends the very message
 * the job was accepted with, whatever headers the retry itself came with (an in-process queue
 * is never sent again).
 */
function pointsOnly (settings: AcceptSettings, key: string | undefined): boolean {
  return settings.store.memory !== undefined || (key !== undefined && settings.queue.inProcess !== true)
}

/** When a job accepted now expires while it has no result. */
export function acceptedExpiry (settings: AcceptSettings, timing: JobTiming): number {
  const { clock, leaseSeconds, resultTtlSeconds, queue } = settings
  return pendingExpiry(clock.now(), timing, leaseSeconds, resultTtlSeconds, queue.deliveryWindowSeconds)
}

/** The queue message of job `id`, with the request inside, and whether it fits the queue. */
export function messageOf (settings: AcceptSettings, accepted: NewRequest, id: string): { message: JobMessage, fits: boolean } {
  const { timing, request, responseLimit, requestId } = accepted
  const message: JobMessage = {
    id,
    timeoutSeconds: timing.timeoutSeconds,
    maxAttempts: timing.maxAttempts,
    resultTtlSeconds: settings.resultTtlSeconds,
    enqueuedAt: settings.clock.now(),
    request
  }
  if (responseLimit !== undefined) message.responseLimit = responseLimit
  if (requestId !== undefined) message.requestId = requestId
  return { message, fits: Buffer.byteLength(encodeMessage(message)) <= settings.queue.maxMessageBytes }
}

/**
 * Sends a pending job's message again: the process that created the job may have died before
 * it queued the message, or could not queue it (a 503 that kept the job for this retry), and
 * then nothing else ever would. A duplicate message is harmless (the claim runs a job once). A
 * send that fails is this request's 503: told 202, its client would wait for a job that may
 * never run. An in-process queue dies with the store, so its jobs cannot be orphaned that way.
 */
async function resend (settings: AcceptSettings, accepted: NewRequest, record: JobRecord): Promise<void> {
  const { queue } = settings
  if (record.status !== JobStatus.pending || queue.inProcess === true) return
  // The job's request waits in the store (pointsOnly): this message, like the first, points at it.
  const { message } = messageOf(settings, accepted, record.id)
  delete message.request
  try {
    await queue.send(encodeMessage(message))
  } catch (error) {
    throw enqueueFailed(error)
  }
}
