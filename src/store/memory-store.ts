import { JobExistsError, StoreFullError } from '../errors.js'
import type { RequestSnapshot, StoredResponse } from '../core/wire.js'
import { clockOption, type Clock } from '../clock.js'
import { number, optionsObject } from '../validate.js'
import type { JobProgress, JobRecord } from '../core/job-state.js'
import type { ClaimResult, JobClaim, KeyReservation, NewJob, JobStore, StoreMemory } from './store.js'
import { isCancellable, isClaimable, isExpired, isForeignMessage, isOwnedBy, JobStatus } from '../core/job-state.js'
import { MemoryBudget, requestEntryBytes, responseEntryBytes } from './memory-budget.js'
import { Watchers, type Listener } from './watchers.js'

interface Entry {
  record: JobRecord
  request?: RequestSnapshot
  /** What this entry counts against `maxBytes`: its request's or its response's bytes. */
  bytes: number
  /** Digest of the idempotency key whose reservation names the job. */
  key?: string
  /** Digest of the job's queue message. */
  messageDigest?: string
}

/** Options of {@link memoryStore}. */
export interface MemoryStoreOptions {
  /**
   * The source of time for expiry (the plugin's `clock` for its default store): tests move it.
   * @default the system clock
   */
  clock?: Clock
  /**
   * How often expired jobs are swept from memory, in milliseconds.
   * @default 60000
   */
  sweepIntervalMs?: number
  /**
   * The memory budget, in bytes, for the requests and responses it keeps. A new job whose
   * request would go beyond it is refused (`StoreFullError`: the client gets a 503 with
   * `Retry-After`) once delivered results, oldest delivery first, have been evicted to make
   * room. A running job's request and a result nobody has read yet are never evicted; a result
   * may take the store past the budget for a while, and new jobs wait until it is read or expires.
   * @default 268435456 (256 MiB)
   */
  maxBytes?: number
}

/**
 * The in-memory result store: the embedded default. Single process only; it forgets
 * everything on restart. Waiters are woken the moment a job changes (no polling).
 *
 * @example
 * await app.register(longRunning, { store: memoryStore() })
 */
export function memoryStore (options?: MemoryStoreOptions): JobStore {
  const checked = optionsObject(options, 'memoryStore options')
  const clock = clockOption(checked.clock, 'clock')
  return new MemoryStore(
    number(checked.sweepIntervalMs, 'sweepIntervalMs', 60_000, 1, 86_400_000, true),
    clock,
    number(checked.maxBytes, 'maxBytes', 256 * 1024 * 1024, 1024, Number.MAX_SAFE_INTEGER, true)
  )
}

class MemoryStore implements JobStore {
  readonly #entries = new Map<string, Entry>()
  readonly #keys = new Map<string, KeyReservation>()
  readonly #watchers = new Watchers()
  readonly #clock: Clock
  readonly #sweepIntervalMs: number
  #sweep: unknown
  readonly #budget: MemoryBudget

  constructor (sweepIntervalMs: number, clock: Clock, maxBytes: number) {
    this.#clock = clock
    this.#sweepIntervalMs = sweepIntervalMs
    this.#budget = new MemoryBudget(maxBytes)
    this.memory = { maxBytes, heldBytes: () => this.#budget.heldBytes(), stats: () => this.#budget.stats(this.#entries.size) }
    this.#scheduleSweep()
  }

  readonly memory: StoreMemory

  async create (job: NewJob): Promise<JobRecord> {
    if (this.#live(job.id) !== undefined) throw new JobExistsError(job.id)
    const bytes = requestEntryBytes(job.request)
    this.#makeRoom(bytes)
    if (!this.#budget.fits(bytes)) throw new StoreFullError(bytes, this.#budget.maxBytes)
    const record: JobRecord = { id: job.id, status: JobStatus.pending, attempt: 0, waitSeconds: job.waitSeconds, createdAt: job.createdAt, expiresAt: job.expiresAt }
    if (job.binding !== undefined) record.binding = job.binding
    if (job.claim !== undefined) Object.assign(record, { status: JobStatus.running, attempt: 1, ...job.claim })
    const entry: Entry = job.request === undefined ? { record, bytes } : { record, request: job.request, bytes }
    if (job.key !== undefined) entry.key = job.key
    if (job.messageDigest !== undefined) entry.messageDigest = job.messageDigest
    this.#entries.set(job.id, entry)
    this.#budget.add(bytes)
    return { ...record }
  }

  /** A client has been handed the result of job `id`: from now on it may be evicted for room. */
  delivered (id: string): void {
    const entry = this.#entries.get(id)
    if (entry?.record.status === JobStatus.done) this.#budget.delivered(id, entry.bytes)
  }

  async reserveKey (reservation: KeyReservation): Promise<KeyReservation> {
    const held = this.#keys.get(reservation.key)
    if (held !== undefined && !isExpired(held, this.#clock.now())) return { ...held }
    this.#keys.set(reservation.key, { ...reservation })
    return { ...reservation }
  }

  async get (id: string): Promise<JobRecord | undefined> {
    const entry = this.#live(id)
    return entry === undefined ? undefined : { ...entry.record }
  }

  async getMany (ids: readonly string[]): Promise<Map<string, JobRecord>> {
    const found = new Map<string, JobRecord>()
    for (const id of ids) {
      const entry = this.#live(id)
      if (entry !== undefined) found.set(id, { ...entry.record })
    }
    return found
  }

  async claim (id: string, claim: JobClaim): Promise<ClaimResult> {
    const entry = this.#live(id)
    if (entry === undefined) return { claimed: false }
    if (isForeignMessage(entry.messageDigest, claim.messageDigest)) return { claimed: false, mismatch: true }
    const { record } = entry
    if (!isClaimable(record, claim.now)) return { claimed: false, record: { ...record } }
    record.status = JobStatus.running
    record.attempt += 1
    record.owner = claim.owner
    record.leaseUntil = claim.leaseUntil
    this.#watchers.notify(record.id, record)
    return entry.request === undefined
      ? { claimed: true, attempt: record.attempt }
      : { claimed: true, attempt: record.attempt, request: entry.request }
  }

  async renew (id: string, owner: string, leaseUntil: number): Promise<boolean> {
    const record = this.#owned(id, owner)
    if (record === undefined) return false
    record.leaseUntil = leaseUntil
    return true
  }

  async setProgress (id: string, owner: string, progress: JobProgress): Promise<boolean> {
    const record = this.#owned(id, owner)
    if (record === undefined) return false
    record.progress = { ...progress }
    this.#watchers.notify(record.id, record)
    return true
  }

  async complete (id: string, owner: string, response: StoredResponse, expiresAt: number): Promise<boolean> {
    return this.#owned(id, owner) !== undefined && this.#end(id, response, expiresAt)
  }

  async cancel (id: string, response: StoredResponse, expiresAt: number): Promise<boolean> {
    const record = this.#live(id)?.record
    return record !== undefined && isCancellable(record) && this.#end(id, response, expiresAt)
  }

  #end (id: string, response: StoredResponse, expiresAt: number): boolean {
    const entry = this.#live(id)
    if (entry === undefined) return false
    const { record } = entry
    record.status = JobStatus.done
    record.response = response
    record.expiresAt = expiresAt
    delete record.owner
    delete record.leaseUntil
    delete entry.request
    // The key lives as long as the result: then the same key is a new request.
    const reservation = entry.key === undefined ? undefined : this.#keys.get(entry.key)
    if (reservation?.jobId === id) reservation.expiresAt = expiresAt
    // The request's bytes make way for the response's: a result is never refused, but delivered
    // ones make room for it.
    const bytes = responseEntryBytes(response)
    this.#budget.add(bytes, entry.bytes)
    entry.bytes = bytes
    this.#makeRoom(0)
    this.#watchers.notify(record.id, record)
    return true
  }

  async delete (id: string): Promise<void> {
    this.#remove(id)
  }

  watch (id: string, listener: Listener): () => void {
    return this.#watchers.add(id, listener)
  }

  async close (): Promise<void> {
    this.#clock.clearTimeout(this.#sweep)
  }

  #live (id: string): Entry | undefined {
    const entry = this.#entries.get(id)
    if (entry === undefined || !isExpired(entry.record, this.#clock.now())) return entry
    this.#remove(id)
    this.#budget.expired += 1
    return undefined
  }

  /** Removes job `id` and its bytes; waiters hear that it is gone. */
  #remove (id: string): void {
    const entry = this.#entries.get(id)
    if (entry === undefined) return
    this.#entries.delete(id)
    this.#budget.removed(id, entry.bytes)
    this.#watchers.notify(id, undefined)
  }

  /** Evicts delivered results, oldest delivery first, until `bytes` more fit (or none is left). */
  #makeRoom (bytes: number): void {
    this.#budget.makeRoom(bytes, id => this.#remove(id))
  }

  #owned (id: string, owner: string): JobRecord | undefined {
    const record = this.#live(id)?.record
    return record !== undefined && isOwnedBy(record, owner) ? record : undefined
  }

  // On the store's clock, so that a test moving a fake clock sees expired jobs leave memory.
  #scheduleSweep (): void {
    this.#sweep = this.#clock.setTimeout(() => {
      this.#sweepExpired()
      this.#scheduleSweep()
    }, this.#sweepIntervalMs)
    // The system clock's timer must not keep the process alive.
    ;(this.#sweep as { unref?: () => void } | undefined)?.unref?.()
  }

  #sweepExpired (): void {
    for (const id of this.#entries.keys()) this.#live(id)
    const now = this.#clock.now()
    for (const [key, reservation] of this.#keys) if (isExpired(reservation, now)) this.#keys.delete(key)
  }
}
