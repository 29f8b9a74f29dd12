import type { JobProgress, JobRecord } from '../core/job-state.js'
import type { RequestSnapshot, StoredResponse } from '../core/wire.js'

/**
 * The result store: where a job's state lives between the HTTP side that waits for it and the
 * worker that runs it. Written for DynamoDB's semantics first (conditional single-item writes,
 * items of at most 400 KB, no change notifications, late TTL deletion); the in-memory store
 * implements exactly the same contract and both pass `storeContract` (`src/testing/`, shipped as `fastify-long-running/testing`).
 */

/** What the HTTP side writes when it accepts a request. */
export interface NewJob {
  id: string
  binding?: string
  waitSeconds: number
  createdAt: number
  expiresAt: number
  /** The request, when it is too large to travel inside the queue message (claim-check). */
  request?: RequestSnapshot
  /**
   * Created already claimed for its first attempt (`running`, attempt 1): the process that
   * accepted the job runs it at once, and a queue message is only its backup.
   */
  claim?: { owner: string, leaseUntil: number }
  /**
   * Digest of the idempotency key whose reservation names this job: when the job ends, the
   * reservation expires with its result (`complete`, `cancel`).
   */
  key?: string
  /** Digest of the job's queue message (`messageDigest`): only a message with it may claim the job. */
  messageDigest?: string
}

/**
 * An idempotency key's reservation: the job the key stands for, and the request it first came
 * with. Keys are only ever stored as digests of the key and its scope (route, caller).
 */
export interface KeyReservation {
  /** Digest of the scoped key. */
  key: string
  jobId: string
  /** Digest of the request that first used the key. */
  fingerprint: string
  /**
   * Epoch ms from which the reservation counts as gone: the job's own first expiry, until the
   * job ends and its result's expiry becomes the key's too.
   */
  expiresAt: number
}

/** The outcome of {@link JobStore.claim}. */
/** A worker's claim on a job: its token, until when, and the digest of the message it holds. */
export interface JobClaim {
  owner: string
  leaseUntil: number
  now: number
  /** Checked against the job's `messageDigest`, when the job has one (jobs of older senders have none). */
  messageDigest?: string
}

export type ClaimResult =
  | { claimed: true, attempt: number, request?: RequestSnapshot }
  /** Not claimable now: done, or another worker holds a live lease. `record` is absent when unknown or expired. */
  | { claimed: false, record?: JobRecord, mismatch?: never }
  /** The job was accepted with another message (`NewJob.messageDigest`): this one is not its. */
  | { claimed: false, mismatch: true, record?: never }

/**
 * The store contract. Every method is one atomic step; every write that can race is
 * conditional. Implementations translate backend errors at the boundary and rethrow the rest.
 */
export interface JobStore {
  /**
   * Records a new job, pending or (with `claim`) running its first attempt, and returns its
   * record. Rejects with `JobExistsError` if a live job has the id. A job refused for its size
   * (a store with a cap) frees the key reservation that names it (`NewJob.key`): it never was.
   */
  create (job: NewJob): Promise<JobRecord>

  /**
   * Reserves an idempotency key for a job, unless a live reservation holds the key already, and
   * returns the reservation that holds it: `reservation` itself when this call reserved it. One
   * conditional write: of any number of racing callers, exactly one reserves. The reservation
   * is written before its job: a caller that finds it but not the job creates the job with the
   * reserved id, and `create`'s own condition lets only one do so.
   */
  reserveKey (reservation: KeyReservation): Promise<KeyReservation>

  /** The job, or `undefined` when unknown or expired. Strongly consistent. */
  get (id: string): Promise<JobRecord | undefined>

  /**
   * Takes the job for one attempt: succeeds when the job is pending, or running with a lease
   * that ended before `now` (its worker died). Increments `attempt` and sets owner and lease.
   * A done job, or one whose lease is live, is never claimed: a duplicate delivery cannot run it.
   * A claim whose `messageDigest` differs from the job's is refused (`mismatch`), whatever the
   * job's state, and changes nothing.
   */
  claim (id: string, claim: JobClaim): Promise<ClaimResult>

  /** Extends the lease; false when `owner` no longer holds the claim. */
  renew (id: string, owner: string, leaseUntil: number): Promise<boolean>

  /** Records progress; false when `owner` no longer holds the claim. */
  setProgress (id: string, owner: string, progress: JobProgress): Promise<boolean>

  /**
   * Stores the final response, only while `owner` holds the claim, so that a stale worker whose
   * lease was taken over can never overwrite the newer attempt's result. The key reservation
   * that names the job (`NewJob.key`) then expires at `expiresAt` too: a key lives as long as
   * its result. That second write is best effort: if it fails, the key keeps its longer expiry.
   */
  complete (id: string, owner: string, response: StoredResponse, expiresAt: number): Promise<boolean>

  /**
   * Ends a pending or running job with `response` (a cancellation), whoever holds the claim:
   * false when the job is done already, unknown or expired. A worker still running it then
   * loses its claim: its renewals and its completion fail. The job's key expires with it, as
   * in `complete`.
   */
  cancel (id: string, response: StoredResponse, expiresAt: number): Promise<boolean>

  /**
   * Forgets the job and everything stored with it, the idempotency key reservation that names it
   * included: the HTTP side deletes a job it could not queue, and a retry with the key is then a
   * new request. A reservation naming another job stays.
   */
  delete (id: string): Promise<void>

  /**
   * Optional change feed. A store that has one (memory) wakes waiters at once; for a store
   * without (DynamoDB) the plugin polls with {@link JobStore.getMany} or `get`.
   * Returns the function that stops the watch.
   */
  watch? (id: string, listener: (record: JobRecord | undefined) => void): () => void

  /** Optional batched read for polling many waiters at once. Missing or expired ids are absent. */
  getMany? (ids: readonly string[]): Promise<Map<string, JobRecord>>

  /**
   * A client has been handed job `id`'s result. Optional: a store that evicts for memory (the
   * in-memory one) may now evict it; others keep results for their whole `resultTtlSeconds`.
   */
  delivered? (id: string): void

  /** Present on a store that keeps everything in this process's memory, within a budget. */
  readonly memory?: StoreMemory

  /** Releases timers and connections. */
  close? (): Promise<void>
}

/** What a store kept in this process's memory holds, and may hold (see `memoryStore`'s `maxBytes`). */
export interface StoreMemory {
  /** The budget, in bytes. */
  readonly maxBytes: number
  /** Bytes that cannot be evicted: requests, running jobs, results nobody has read yet. */
  heldBytes (): number
  stats (): StoreStats
}

/** The memory store's counters, as `app.longRunning.stats()` shows them. */
export interface StoreStats {
  /** Jobs kept (pending, running and finished), and the bytes counted against the budget. */
  storedJobs: number
  storedBytes: number
  /** Delivered results removed to make room for new jobs. */
  evictions: number
  /**
   * Results nobody had read, replaced by `410 RESULT_EVICTED` because unread results held more
   * than half the budget (oldest first).
   */
  unreadEvictions: number
  /** Jobs removed because their time was up (read or not). */
  expired: number
}
