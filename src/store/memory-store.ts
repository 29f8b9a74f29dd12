import { JobExistsError, ResultEvictedError, StoreFullError } from '../errors.js'
import { errorResponse } from '../core/error-response.js'
import type { RequestSnapshot, StoredResponse } from '../core/wire.js'
import { clockOption, type Clock } from '../clock.js'
import { number, optionNames, optionsObject } from '../validate.js'
import type { ClaimResult, JobClaim, KeyReservation, NewJob, JobStore, StoreMemory } from './store.js'
import { isCancellable, isClaimable, isExpired, isForeignMessage, isOwnedBy, JobStatus, newJobRecord, type JobProgress, type JobRecord } from '../core/job-state.js'
import { MemoryBudget, requestEntryBytes, responseEntryBytes } from './memory-budget.js'
import { MemoryKeys } from './memory-keys.js'
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
   * The memory budget, in bytes, for the requests, results and idempotency keys it keeps. A new
   * job or key beyond it is refused (`StoreFullError`: the client gets a 503 with `Retry-After`)
   * once evictions have made what room they can: delivered results first, then unread ones
   * beyond half the budget (`410 RESULT_EVICTED`; see `MemoryBudget`). Waiting and running jobs
   * are never evicted; a result may take the store past the budget until room is needed.
   * @default 268435456 (256 MiB)
   */
  maxBytes?: number
}

const MEMORY_STORE_OPTIONS = optionNames<MemoryStoreOptions>({ clock: true, sweepIntervalMs: true, maxBytes: true })

/**
 * The in-memory result store: the embedded default. Single process only; it forgets
 * everything on restart. Waiters are woken the moment a job changes (no polling).
 *
 * @example
 * await app.register(longRunning, { store: memoryStore() })
 */
export function memoryStore (options?: MemoryStoreOptions): JobStore {
  const checked = optionsObject(options, 'memoryStore options', MEMORY_STORE_OPTIONS, false, 'memoryStore')
  const clock = clockOption(checked.clock, 'clock')
  return new MemoryStore(
    number(checked.sweepIntervalMs, 'sweepIntervalMs', 60_000, 1, 86_400_000, true),
    clock,
    number(checked.maxBytes, 'maxBytes', 256 * 1024 * 1024, 1024, Number.MAX_SAFE_INTEGER, true)
  )
}

class MemoryStore implements JobStore {
  readonly #entries = new Map<string, Entry>()
  readonly #watchers = new Watchers()
  readonly #clock: Clock
  readonly #sweepIntervalMs: number
  #sweep: unknown
  readonly #budget: MemoryBudget
  readonly #keys: MemoryKeys

  constructor (sweepIntervalMs: number, clock: Clock, maxBytes: number) {
    this.#clock = clock
    this.#sweepIntervalMs = sweepIntervalMs
    this.#budget = new MemoryBudget(maxBytes)
    this.#keys = new MemoryKeys(this.#budget, bytes => this.#makeRoom(bytes))
    this.memory = { maxBytes, heldBytes: () => this.#budget.heldBytes(), stats: () => this.#budget.stats(this.#entries.size) }
    this.#scheduleSweep()
  }

  readonly memory: StoreMemory

  async create (job: NewJob): Promise<JobRecord> {
    if (this.#live(job.id) !== undefined) throw new JobExistsError(job.id)
    const bytes = requestEntryBytes(job.request)
    this.#makeRoom(bytes)
    if (!this.#budget.fits(bytes)) {
      this.#keys.release(job.key, job.id) // its retries would otherwise find a job that never was
      throw new StoreFullError(bytes, this.#budget.maxBytes)
    }
    const record = newJobRecord(job)
    // Optional fields only when present (exactOptionalPropertyTypes).
    const { request, key, messageDigest } = job
    this.#entries.set(job.id, { record, bytes, ...(request && { request }), ...(key !== undefined && { key }), ...(messageDigest !== undefined && { messageDigest }) })
    this.#budget.add(bytes)
    return { ...record }
  }

  /** A client has been handed the result of job `id`: from now on it may be evicted for room. */
  delivered (id: string): void {
    const entry = this.#entries.get(id)
    if (entry?.record.status === JobStatus.done) this.#budget.delivered(id, entry.bytes)
  }

  async reserveKey (reservation: KeyReservation): Promise<KeyReservation> {
    return this.#keys.reserve(reservation, this.#clock.now())
  }

  async get (id: string): Promise<JobRecord | undefined> {
    const entry = this.#live(id)
    return entry === undefined ? undefined : { ...entry.record }
  }

  async getMany (ids: readonly string[]): Promise<Map<string, JobRecord>> {
    const records = await Promise.all(ids.map(async id => [id, await this.get(id)] as const))
    return new Map(records.filter((pair): pair is [string, JobRecord] => pair[1] !== undefined))
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
    this.#keys.expireWith(entry.key, id, expiresAt)
    // The request's bytes make way for the response's: a result is never refused, others make room.
    this.#resize(entry, responseEntryBytes(response))
    this.#budget.finished(id, entry.bytes)
    this.#makeRoom(0)
    this.#watchers.notify(record.id, record)
    return true
  }

  /** Replaces a result nobody read by a small `410 RESULT_EVICTED`: its client learns what became of it. */
  #evictUnread (id: string): number {
    const entry = this.#entries.get(id) as Entry
    entry.record.response = errorResponse(new ResultEvictedError())
    this.#resize(entry, responseEntryBytes(entry.record.response))
    this.#watchers.notify(id, entry.record)
    return entry.bytes
  }

  #resize (entry: Entry, bytes: number): void {
    this.#budget.add(bytes, entry.bytes)
    entry.bytes = bytes
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

  /**
   * Removes job `id`, its bytes and its key (never queued, evicted or expired: the next request
   * with the key is a new one, as once the key expires); waiters hear that it is gone.
   */
  #remove (id: string): void {
    const entry = this.#entries.get(id)
    if (entry === undefined) return
    this.#entries.delete(id)
    this.#keys.release(entry.key, id)
    this.#budget.removed(id, entry.bytes)
    this.#watchers.notify(id, undefined)
  }

  /** Evicts until `bytes` more fit, or nothing more may go (`MemoryBudget.makeRoom`). */
  #makeRoom (bytes: number): void {
    this.#budget.makeRoom(bytes, { remove: id => this.#remove(id), replace: id => this.#evictUnread(id) })
  }

  #owned (id: string, owner: string): JobRecord | undefined {
    const record = this.#live(id)?.record
    return record !== undefined && isOwnedBy(record, owner) ? record : undefined
  }

  // On the store's clock, so that a test moving a fake clock sees expired jobs leave memory.
  #scheduleSweep (): void {
    this.#sweep = this.#clock.setTimeout(() => {
      for (const id of this.#entries.keys()) this.#live(id)
      this.#keys.sweep(this.#clock.now())
      this.#scheduleSweep()
    }, this.#sweepIntervalMs)
    // The system clock's timer must not keep the process alive.
    ;(this.#sweep as { unref?: () => void } | undefined)?.unref?.()
  }
}
