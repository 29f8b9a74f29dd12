import type { Redis } from 'ioredis'
import type { JobRecord } from '../core/job-state.js'
import { Watchers, type Listener } from './watchers.js'

/**
 * The Redis store's change feed: one subscriber connection per store, on the store's one
 * channel, whose messages are the ids of jobs that changed. A message for a job watched here
 * reads the job and tells its listeners, so that waiting requests in every process wake the
 * moment a job ends, with no polling. A change published while the subscription was not live
 * (the first subscription, a reconnection) would be missed: each time it becomes live, every
 * watched job is read again.
 */
export class RedisWatch {
  readonly #watchers = new Watchers()
  readonly #read: (id: string) => Promise<JobRecord | undefined>
  readonly #connect: () => Promise<Redis>
  readonly #channel: string
  /** Reads under way, and whether another change came in meanwhile (then it reads again). */
  readonly #reading = new Map<string, { again: boolean }>()
  #subscriber: Promise<Redis> | undefined
  #live = false

  constructor (channel: string, connect: () => Promise<Redis>, read: (id: string) => Promise<JobRecord | undefined>) {
    this.#channel = channel
    this.#connect = connect
    this.#read = read
  }

  watch (id: string, listener: Listener): () => void {
    const stop = this.#watchers.add(id, listener)
    if (this.#subscriber === undefined) {
      this.#subscriber = this.#subscribe()
      // Without a feed (ioredis missing), each wait ends at its time and reads the job then.
      this.#subscriber.catch(() => {})
    }
    return stop
  }

  async #subscribe (): Promise<Redis> {
    const subscriber = await this.#connect()
    subscriber.on('message', (_channel: string, id: string) => { this.#changed(id) })
    // ioredis subscribes again after a reconnection; what changed while it was away is read.
    subscriber.on('ready', () => { void this.#resubscribed(subscriber) })
    // The subscriber's commands wait for the server (it may be down now): live once it answers.
    await subscriber.subscribe(this.#channel)
    this.#becameLive()
    return subscriber
  }

  async #resubscribed (subscriber: Redis): Promise<void> {
    if (!this.#live) return
    await subscriber.subscribe(this.#channel).catch(() => {})
    this.#becameLive()
  }

  #becameLive (): void {
    this.#live = true
    for (const id of this.#watchers.ids()) this.#changed(id)
  }

  /** Reads job `id` for its listeners; one read at a time per job, and one more if it changed meanwhile. */
  #changed (id: string): void {
    if (!this.#watchers.has(id)) return
    const reading = this.#reading.get(id)
    if (reading !== undefined) {
      reading.again = true
      return
    }
    const state = { again: false }
    this.#reading.set(id, state)
    this.#read(id).then(record => { this.#watchers.notify(id, record) }, () => {}).finally(() => {
      this.#reading.delete(id)
      if (state.again) this.#changed(id)
    })
  }
}
