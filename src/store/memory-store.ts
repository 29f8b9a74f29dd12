import { JobExistsError } from '../errors.js'
import type { RequestSnapshot, StoredResponse } from '../job/wire.js'
import { clockOption, type Clock } from '../clock.js'
import { number, optionsObject } from '../validate.js'
import type { ClaimResult, JobProgress, JobRecord, KeyReservation, NewJob, ResultStore } from './store.js'
import { isExpired, JobStatus } from './store.js'
import { Watchers, type Listener } from './watchers.js'

interface Entry {
  record: JobRecord
  request?: RequestSnapshot
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
}

/**
 * The in-memory result store: the embedded default. Single process only; it forgets
 * everything on restart. Waiters are woken the moment a job changes (no polling).
 *
 * @example
 * await app.register(longRunning, { store: memoryStore() })
 */
export function memoryStore (options?: MemoryStoreOptions): ResultStore {
  const checked = optionsObject(options, 'memoryStore options')
  const clock = clockOption(checked.clock, 'clock')
  return new MemoryStore(number(checked.sweepIntervalMs, 'sweepIntervalMs', 60_000, 1, 86_400_000, true), clock)
}

class MemoryStore implements ResultStore {
  readonly #entries = new Map<string, Entry>()
  readonly #keys = new Map<string, KeyReservation>()
  readonly #watchers = new Watchers()
  readonly #sweep: NodeJS.Timeout
  readonly #clock: Clock

  constructor (sweepIntervalMs: number, clock: Clock) {
    this.#clock = clock
    this.#sweep = setInterval(() => this.#sweepExpired(), sweepIntervalMs).unref()
  }

  async create (job: NewJob): Promise<JobRecord> {
    if (this.#live(job.id) !== undefined) throw new JobExistsError(job.id)
    const record: JobRecord = { id: job.id, status: JobStatus.pending, attempt: 0, waitSeconds: job.waitSeconds, createdAt: job.createdAt, expiresAt: job.expiresAt }
    if (job.binding !== undefined) record.binding = job.binding
    this.#entries.set(job.id, job.request === undefined ? { record } : { record, request: job.request })
    return { ...record }
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

  async claim (id: string, claim: { owner: string, leaseUntil: number, now: number }): Promise<ClaimResult> {
    const entry = this.#live(id)
    if (entry === undefined) return { claimed: false }
    const { record } = entry
    const leaseEnded = record.status === JobStatus.running && (record.leaseUntil ?? 0) < claim.now
    if (record.status !== JobStatus.pending && !leaseEnded) return { claimed: false, record: { ...record } }
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
    return this.#live(id)?.record.status !== JobStatus.done && this.#end(id, response, expiresAt)
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
    this.#watchers.notify(record.id, record)
    return true
  }

  async delete (id: string): Promise<void> {
    if (this.#entries.delete(id)) this.#watchers.notify(id, undefined)
  }

  watch (id: string, listener: Listener): () => void {
    return this.#watchers.add(id, listener)
  }

  async close (): Promise<void> {
    clearInterval(this.#sweep)
  }

  #live (id: string): Entry | undefined {
    const entry = this.#entries.get(id)
    if (entry === undefined || !isExpired(entry.record, this.#clock.now())) return entry
    this.#entries.delete(id)
    this.#watchers.notify(id, undefined)
    return undefined
  }

  #owned (id: string, owner: string): JobRecord | undefined {
    const record = this.#live(id)?.record
    return record?.status === JobStatus.running && record.owner === owner ? record : undefined
  }

  #sweepExpired (): void {
    for (const id of this.#entries.keys()) this.#live(id)
    const now = this.#clock.now()
    for (const [key, reservation] of this.#keys) if (isExpired(reservation, now)) this.#keys.delete(key)
  }
}
