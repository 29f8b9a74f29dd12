import type { Clock } from '../clock.js'
import type { JobRecord } from '../core/job-state.js'
import type { JobStore } from '../store/store.js'
import { JobStatus } from '../core/job-state.js'

type Watch = (id: string, listener: (record: JobRecord | undefined) => void, current: JobRecord) => () => void

/**
 * Waits for a job to finish, on the store's own change feed when it has one (memory: woken at
 * once) or on the shared {@link Poller}. No timers spin and no request polls on its own.
 */
export class Waiter {
  readonly #store: JobStore
  readonly #watch: Watch
  readonly #native: boolean
  readonly #clock: Clock

  /** `clock` times each wait: the plugin's, so that a test's fake clock ends waits too. */
  constructor (store: JobStore, fallback: Watch, clock: Clock) {
    this.#store = store
    this.#clock = clock
    this.#native = store.watch !== undefined
    this.#watch = store.watch?.bind(store) ?? fallback
  }

  /**
   * Resolves with the job once it is done or gone, or with the last state seen after `ms` or
   * when `signal` aborts. `current` is the state the caller already read.
   */
  async until (current: JobRecord, ms: number, signal: AbortSignal): Promise<JobRecord | undefined> {
    if (current.status === JobStatus.done || ms <= 0 || signal.aborted) return current
    return await new Promise(resolve => {
      let latest: JobRecord | undefined = current
      let settled = false
      const finish = (): void => {
        if (settled) return
        settled = true
        stop()
        this.#clock.clearTimeout(timer)
        signal.removeEventListener('abort', finish)
        resolve(latest)
      }
      const onRecord = (record: JobRecord | undefined): void => {
        latest = record
        if (record === undefined || record.status === JobStatus.done) finish()
      }
      const stop = this.#watch(current.id, onRecord, current)
      const timer = this.#clock.setTimeout(finish, ms)
      signal.addEventListener('abort', finish)
      // A change between the caller's read and the subscription would otherwise be missed
      // until the timeout. Free for a store with a change feed; a polled store reads soon anyway.
      if (this.#native) {
        this.#store.get(current.id).then(record => { if (!settled) onRecord(record) }, () => {})
      }
    })
  }
}
