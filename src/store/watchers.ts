import type { JobRecord } from '../core/job-state.js'

/** Hears a job's latest state; `undefined` once the job is gone. */
export type Listener = (record: JobRecord | undefined) => void

/**
 * Listeners by job id: the change feed behind `JobStore.watch`, for the memory store (which
 * notifies on every write) and for the poller (which notifies on every read).
 */
export class Watchers {
  readonly #byId = new Map<string, Set<Listener>>()

  /** Adds a listener; returns the function that removes it. */
  add (id: string, listener: Listener): () => void {
    let listeners = this.#byId.get(id)
    if (listeners === undefined) {
      listeners = new Set()
      this.#byId.set(id, listeners)
    }
    listeners.add(listener)
    return () => {
      listeners.delete(listener)
      if (listeners.size === 0) this.#byId.delete(id)
    }
  }

  /** Tells every listener of `id`, each with its own copy, so that none can change another's. */
  notify (id: string, record: JobRecord | undefined): void {
    for (const listener of this.#byId.get(id) ?? []) listener(record === undefined ? undefined : { ...record })
  }

  /** The ids watched. */
  ids (): string[] {
    return [...this.#byId.keys()]
  }

  /** Whether anyone watches `id`. */
  has (id: string): boolean {
    return this.#byId.has(id)
  }
}
