import type { FastifyBaseLogger } from 'fastify'
import { JobExistsError } from '../errors.js'
import type { JobRecord } from '../core/job-state.js'
import { JobStatus } from '../core/job-state.js'
import { acceptedExpiry, enqueueFailed, enqueueJob, messageOf, type Acceptance, type NewRequest } from './enqueue.js'
import { newJobId } from '../core/job-id.js'
import { encodeMessage } from './message.js'

/** An idempotency key as the job layer sees it: digests only. */
export interface KeyedRequest {
  /** Digest of the key with its scope (route, caller). */
  key: string
  /** Digest of the request (method, path, query, content type, body). */
  fingerprint: string
}

/** What became of a keyed request: a new job, the key's existing job, or a key reused with another request. */
export type Admission =
  | { kind: 'created', record: JobRecord }
  | { kind: 'attached', record: JobRecord }
  | { kind: 'mismatch' }

/**
 * Rounds of "read the key's job, else create it": a job that vanishes between the two (its
 * enqueue failed and removed it, or it expired) is created again at most this often.
 */
const MAX_ROUNDS = 3

/**
 * Accepts a request that carries an idempotency key, running the handler at most once per key
 * across processes: the key is reserved first (one conditional write names the job), then the
 * job is created under the reserved id (one conditional write on that id). Whoever finds the
 * reservation but not the job creates it, so that a crash between the two writes loses nothing
 * and the next request with the key queues the job; the id's own condition lets only one
 * create it, and everyone else attaches to it.
 */
export async function enqueueOnce (acceptance: Acceptance, accepted: NewRequest, keyed: KeyedRequest, log: FastifyBaseLogger): Promise<Admission> {
  const { store } = acceptance
  const mine = newJobId()
  const holder = await store.reserveKey({ key: keyed.key, jobId: mine, fingerprint: keyed.fingerprint, expiresAt: acceptedExpiry(acceptance, accepted.timing) })
  if (holder.fingerprint !== keyed.fingerprint) return { kind: 'mismatch' }
  for (let round = 0; round < MAX_ROUNDS; round++) {
    if (round > 0 || holder.jobId !== mine) {
      const record = await store.get(holder.jobId)
      if (record !== undefined) {
        await resend(acceptance, accepted, record, log)
        return { kind: 'attached', record }
      }
    }
    try {
      return { kind: 'created', record: await enqueueJob(acceptance, accepted, log, holder.jobId) }
    } catch (error) {
      if (!(error instanceof JobExistsError)) throw error
    }
  }
  throw enqueueFailed()
}

/**
 * Sends a pending job's message again, from the retry's own request (the same one, by its
 * fingerprint): the process that created the job may have died before it queued the message,
 * and then nothing else ever would. A duplicate message is harmless (the claim runs a job once).
 * An in-process queue dies with the store, so its jobs cannot be orphaned that way; a request
 * too large for a message is left to the original's claim-check.
 */
async function resend (acceptance: Acceptance, accepted: NewRequest, record: JobRecord, log: FastifyBaseLogger): Promise<void> {
  const { queue } = acceptance
  if (record.status !== JobStatus.pending || queue.inProcess === true) return
  const { message, fits } = messageOf(acceptance, accepted, record.id)
  if (!fits) return
  try {
    await queue.send(encodeMessage(message))
  } catch (error) {
    log.warn({ err: error, jobId: record.id }, 'sending a pending job\'s message again failed; its first message may still run it')
  }
}
