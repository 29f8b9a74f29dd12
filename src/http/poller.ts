import type { FastifyBaseLogger } from 'fastify'
import type { JobRecord, ResultStore } from '../store/store.js'
import { Watchers, type Listener } from '../store/watchers.js'

/**
 * Change feed for stores that cannot notify (DynamoDB): one timer per process reads every
 * watched job in one batch per interval, so reads grow with the interval, not with the
 * number of waiting requests.
 */
export class Poller {
  readonly #store: ResultStore
  readonly #intervalMs: number
  readonly #log: FastifyBaseLogger
  readonly #watchers = new Watchers()
  #timer: NodeJS.Timeout | undefined

  constructor (store: ResultStore, intervalMs: number, log: FastifyBaseLogger) {
    this.#store = store
    this.#intervalMs = intervalMs
    this.#log = log
  }

  /** Same shape as {@link ResultStore.watch}. */
  watch (id: string, listener: Listener): () => void {
    const stop = this.#watchers.add(id, listener)
    this.#timer ??= setTimeout(() => { void this.#poll() }, this.#intervalMs)
    return stop
  }

  async #poll (): Promise<void> {
    const ids = this.#watchers.ids()
    try {
      const records = await this.#read(ids)
      for (const id of ids) this.#watchers.notify(id, records.get(id))
    } catch (error) {
      this.#log.warn({ err: error }, 'polling the result store failed')
    }
    this.#timer = this.#watchers.ids().length === 0 ? undefined : setTimeout(() => { void this.#poll() }, this.#intervalMs)
  }

  async #read (ids: string[]): Promise<Map<string, JobRecord>> {
    if (this.#store.getMany !== undefined) return await this.#store.getMany(ids)
    const records = await Promise.all(ids.map(async id => await this.#store.get(id)))
    return new Map(records.flatMap(record => record === undefined ? [] : [[record.id, record]]))
  }
}
