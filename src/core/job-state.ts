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

/** What the record of a new job is made of (a store's `NewJob`, as far as its record goes). */
export interface NewJobRecord {
  id: string
  waitSeconds: number
  createdAt: number
  expiresAt: number
  binding?: string
  claim?: { owner: string, leaseUntil: number }
}

/**
 * The record of a job just created: pending before its first attempt, or running that attempt
 * already when created claimed (the process that accepted it runs it at once).
 */
export function newJobRecord (job: NewJobRecord): JobRecord {
  const record: JobRecord = { id: job.id, status: JobStatus.pending, attempt: 0, waitSeconds: job.waitSeconds, createdAt: job.createdAt, expiresAt: job.expiresAt }
  if (job.binding !== undefined) record.binding = job.binding
  if (job.claim !== undefined) Object.assign(record, { status: JobStatus.running, attempt: 1, owner: job.claim.owner, leaseUntil: job.claim.leaseUntil })
  return record
}

// The job state machine, written once: the memory store calls these rules, and the DynamoDB
// store's condition expressions (store/dynamodb-conditions.ts) spell each one as a condition;
// the store contract checks that both decide every case alike.
//
//   create ──► pending ──claim──► running(owner, lease) ──complete(owner)──► done
//                 │                 │  ▲                                      ▲
//                 │   lease lapsed  └──┘ claim by the next attempt (attempt + 1)
//                 └───────────── cancel (anyone, while not done) ─────────────┘
//
// Every rule applies to a live record only: from `expiresAt` on, a record counts as gone.

/**
 * The one expiry rule: a record counts as gone from `expiresAt` on, whether or not the backend
 * has deleted it yet (DynamoDB's TTL deletes up to days late; the memory store sweeps). `now`
 * comes from the plugin's clock, so that JavaScript and the backend agree on what now is.
 *
 * @example
 * // A record kept elsewhere (a cache, say) is as gone as the store's own.
 * if (isExpired(cached, app.longRunning.clock.now())) cache.delete(cached.id)
 */
export function isExpired (record: { expiresAt: number }, now: number): boolean {
  return record.expiresAt <= now
}

/**
 * Whether a claim comes with a message other than the one the job was accepted with: the job
 * has a message digest and the claim's differs (or has none). Such a claim changes nothing,
 * whatever the job's state: a writer of the queue cannot run, delay or end anyone's job.
 */
export function isForeignMessage (jobDigest: string | undefined, claimDigest: string | undefined): boolean {
  return jobDigest !== undefined && claimDigest !== jobDigest
}

/**
 * Whether a claim made at `now` may take the job: it is pending, or running with a lease that
 * ended before `now` (its worker died, so the next attempt takes over). A done job, or one whose
 * lease is live (until `leaseUntil` itself), is never claimed.
 */
export function isClaimable (record: Pick<JobRecord, 'status' | 'leaseUntil'>, now: number): boolean {
  return record.status === JobStatus.pending || (record.status === JobStatus.running && (record.leaseUntil ?? 0) < now)
}

/**
 * Whether `owner` holds the job's claim: only the holder renews the lease, reports progress and
 * completes the job, so that a stale worker whose lease was taken over writes nothing.
 */
export function isOwnedBy (record: Pick<JobRecord, 'status' | 'owner'>, owner: string): boolean {
  return record.status === JobStatus.running && record.owner === owner
}

/** Whether a cancellation may end the job: pending or running, whoever holds the claim. */
export function isCancellable (record: Pick<JobRecord, 'status'>): boolean {
  return record.status !== JobStatus.done
}
