import type { FastifyBaseLogger } from 'fastify'
import type { JobRecord, ResultStore } from '../store/store.js'

type Listener = (record: JobRecord | undefined) => void

/**
 * Change feed for stores that cannot notify (DynamoDB): one timer per process reads every
 * watched job in one batch per interval, so reads grow with the interval, not with the
 * number of waiting requests.
 */
export class Poller {
  readonly #store: ResultStore
  readonly #intervalMs: number
  readonly #log: FastifyBaseLogger
  readonly #listeners = new Map<string, Set<Listener>>()
  #timer: NodeJS.Timeout | undefined

  constructor (store: ResultStore, intervalMs: number, log: FastifyBaseLogger) {
    this.#store = store
    this.#intervalMs = intervalMs
    this.#log = log
  }

  /** Same shape as {@link ResultStore.watch}. */
  watch (id: string, listener: Listener): () => void {
    let listeners = this.#listeners.get(id)
    if (listeners === undefined) {
      listeners = new Set()
      this.#listeners.set(id, listeners)
    }
    listeners.add(listener)
    this.#timer ??= setTimeout(() => { void this.#poll() }, this.#intervalMs)
    return () => {
      listeners.delete(listener)
      if (listeners.size === 0) this.#listeners.delete(id)
    }
  }

  async #poll (): Promise<void> {
    const ids = [...this.#listeners.keys()]
    try {
      const records = await this.#read(ids)
      for (const id of ids) {
        const record = records.get(id)
        for (const listener of this.#listeners.get(id) ?? []) listener(record)
      }
    } catch (error) {
      this.#log.warn({ err: error }, 'polling the result store failed')
    }
    this.#timer = this.#listeners.size === 0 ? undefined : setTimeout(() => { void this.#poll() }, this.#intervalMs)
  }

  async #read (ids: string[]): Promise<Map<string, JobRecord>> {
    if (this.#store.getMany !== undefined) return await this.#store.getMany(ids)
    const records = await Promise.all(ids.map(async id => await this.#store.get(id)))
    return new Map(records.flatMap(record => record === undefined ? [] : [[record.id, record]]))
  }
}
