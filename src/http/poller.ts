import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import type { StoredResponse } from '../core/wire.js'
import { JobStatus, type JobRecord } from '../core/job-state.js'
import { type JobStore } from '../store/store.js'
import { Watchers, type Listener } from '../store/watchers.js'

/**
 * What reading the result costs the answer: the read itself and sending the response after it.
 * A job is read again before its delivery budget has passed, by this much.
 */
const ANSWER_MARGIN_MS = 15
/** Longest gap between two reads of one job, however old it is. */
const MAX_INTERVAL_MS = 10_000
/** A read due this soon (a share of the job's own interval) is done with the one due now. */
const COALESCE = 0.2

/**
 * How long after a read a job of `ageMs` is read again. A result should reach its client within
 * `baseMs` plus 1 % of the job's length: as often as that allows while a job is young (most jobs
 * are short), rarer as it ages. Reads per job then grow with the logarithm of its length:
 * about 100 × ln(1 + t / 8.5 s) at the default 100 ms, 78 for a 10 s job and 420 for 10 minutes.
 */
export function pollIntervalMs (ageMs: number, baseMs: number): number {
  return Math.min(MAX_INTERVAL_MS, Math.max(baseMs - ANSWER_MARGIN_MS, 5) + Math.max(0, ageMs) / 100)
}

interface Polled {
  createdAt: number
  nextAt: number
  /** The latest state seen: what a completion in this process is merged into. */
  known: JobRecord
}

/**
 * Change feed for stores that cannot notify (DynamoDB): one timer per process reads the watched
 * jobs that are due, in one batch, each on a schedule set by its age (`pollIntervalMs()`), so
 * that reads grow with the job's length and not with the number of waiting requests.
 *
 * The store's reads are strongly consistent: one read unit for the job's item (under 4 KB). An
 * eventually consistent read costs half, but "may not reflect the results of a recently
 * completed write" (DynamoDB Developer Guide, "Read consistency"), with no bound on how long: a
 * finished job read as running would wait a whole interval more, past its delivery budget, to
 * save at most 2 % of what the job costs (`bench/cost-model.ts`).
 */
export class Poller {
  readonly #store: JobStore
  readonly #baseMs: number
  readonly #clock: Clock
  readonly #log: FastifyBaseLogger
  readonly #watchers = new Watchers()
  readonly #jobs = new Map<string, Polled>()
  #timer: unknown
  #timerAt = Infinity
  #reading = false

  constructor (store: JobStore, options: { baseMs: number, clock: Clock, log: FastifyBaseLogger }) {
    this.#store = store
    this.#baseMs = options.baseMs
    this.#clock = options.clock
    this.#log = options.log
  }

  /** {@link JobStore.watch}, with the state the caller read last (`current`). */
  watch (id: string, listener: Listener, current: JobRecord): () => void {
    const stop = this.#watchers.add(id, listener)
    if (!this.#jobs.has(id)) {
      const now = this.#clock.now()
      // The caller has just read the job (or created it): the next read follows the job's schedule.
      this.#jobs.set(id, { createdAt: current.createdAt, nextAt: now + pollIntervalMs(now - current.createdAt, this.#baseMs), known: current })
      this.#arm()
    }
    return () => {
      stop()
      if (!this.#watchers.has(id)) this.#jobs.delete(id)
    }
  }

  /**
   * A worker of this process stored the job's final response: its waiting requests get it at
   * once, with no read.
   */
  completed (id: string, response: StoredResponse, expiresAt: number): void {
    const known = this.#jobs.get(id)?.known
    if (known === undefined) return
    const { owner: _owner, leaseUntil: _leaseUntil, ...record } = known
    this.#watchers.notify(id, { ...record, status: JobStatus.done, response, expiresAt })
  }

  /** Sets the timer for the earliest read due, unless a read is under way (it sets it when done). */
  #arm (): void {
    if (this.#reading) return
    let next = Infinity
    for (const job of this.#jobs.values()) next = Math.min(next, job.nextAt)
    if (next >= this.#timerAt) return
    // Sooner than the timer set (or none is): a young job joined older ones.
    this.#clock.clearTimeout(this.#timer)
    this.#timerAt = next
    this.#timer = this.#clock.setTimeout(() => { void this.#poll() }, Math.max(0, next - this.#clock.now()))
  }

  async #poll (): Promise<void> {
    this.#timer = undefined
    this.#timerAt = Infinity
    this.#reading = true
    const now = this.#clock.now()
    const due = [...this.#jobs].filter(([, job]) => job.nextAt - now <= COALESCE * pollIntervalMs(now - job.createdAt, this.#baseMs))
    const ids = due.map(([id]) => id)
    try {
      const records = await this.#read(ids)
      for (const id of ids) {
        const record = records.get(id)
        const job = this.#jobs.get(id)
        if (job !== undefined && record !== undefined) job.known = record
        this.#watchers.notify(id, record)
      }
    } catch (error) {
      this.#log.warn({ err: error }, 'polling the result store failed')
    }
    const after = this.#clock.now()
    for (const [id, job] of due) if (this.#jobs.get(id) === job) job.nextAt = after + pollIntervalMs(after - job.createdAt, this.#baseMs)
    this.#reading = false
    this.#arm()
  }

  async #read (ids: string[]): Promise<Map<string, JobRecord>> {
    if (ids.length === 0) return new Map()
    if (this.#store.getMany !== undefined) return await this.#store.getMany(ids)
    const records = await Promise.all(ids.map(async id => await this.#store.get(id)))
    return new Map(records.flatMap(record => record === undefined ? [] : [[record.id, record]]))
  }
}
