import type { StoredResponse } from './wire.js'

// A job's state, as every layer reads it: the store keeps it, the worker moves it forward, the
// HTTP side waits on it.

/**
 * Job states. A job only moves forward: pending → running → done (running → running on takeover).
 *
 * @example
 * const record = await app.longRunning.store.get(id)
 * if (record?.status === JobStatus.done) console.log(record.response?.statusCode)
 */
export const JobStatus = {
  pending: 'pending',
  running: 'running',
  done: 'done'
} as const
export type JobStatus = typeof JobStatus[keyof typeof JobStatus]

/** What a running handler last reported through `request.longRunning.progress()`. */
export interface JobProgress {
  fraction: number
  message?: string
}

/** A job's state as the waiting side sees it. */
export interface JobRecord {
  id: string
  status: JobStatus
  /** Claims taken so far; the running attempt's number while `running`. */
  attempt: number
  /** Opaque value from `bindTo`; only a request with the same value may read the job. */
  binding?: string
  /** Token of the worker holding the claim, and until when (epoch ms) the claim holds. */
  owner?: string
  leaseUntil?: number
  progress?: JobProgress
  /** Present exactly when `status` is `done`. */
  response?: StoredResponse
  /** How long one request waits for this job (the route's `waitSeconds`). */
  waitSeconds: number
  /** Epoch ms when the job was accepted: a store that cannot notify is polled by the job's age. */
  createdAt: number
  /** Epoch ms after which the record counts as gone, whether or not the backend deleted it. */
  expiresAt: number
}

/**
 * The one expiry rule: a record counts as gone from `expiresAt` on, whether or not the backend
 * has deleted it yet (DynamoDB's TTL deletes up to days late; the memory store sweeps).
 */
export function isExpired (record: { expiresAt: number }, now = Date.now()): boolean {
  return record.expiresAt <= now
}
