import type { Redis } from 'ioredis'
import type { JobRecord } from '../core/job-state.js'
import { Watchers, type Listener } from './watchers.js'

/** What a change message tells: the job's id, and its record or that it must be read. */
export interface Announced { id: string, record: JobRecord | undefined | 'read' }

/**
 * The Redis store's change feed: one subscriber connection per store, on the store's one
 * channel, whose messages tell of jobs that changed: the job's id and its record but the
 * response. A message for a job watched here tells its listeners that record, so that waiting
 * requests in every process follow their job with no read and wake the moment it ends; the job
 * is read when the message does not tell enough (a finished job's response, a deletion). A
 * change published while the subscription was not live (the first subscription, a
 * reconnection) would be missed: each time it becomes live, every watched job is read again.
 */
export class RedisWatch {
  readonly #watchers = new Watchers()
  readonly #read: (id: string) => Promise<JobRecord | undefined>
  readonly #decode: (message: string) => Announced
  readonly #connect: () => Promise<Redis>
  readonly #channel: string
  /** Reads under way, and whether another change came in meanwhile (then it reads again). */
  readonly #reading = new Map<string, { again: boolean }>()
  #subscriber: Promise<Redis> | undefined
  #live = false

  constructor (channel: string, connect: () => Promise<Redis>, read: (id: string) => Promise<JobRecord | undefined>, decode: (message: string) => Announced) {
    this.#channel = channel
    this.#connect = connect
    this.#read = read
    this.#decode = decode
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
    subscriber.on('message', (_channel: string, message: string) => { this.#heard(message) })
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

  #heard (message: string): void {
    const { id, record } = this.#decode(message)
    if (!this.#watchers.has(id)) return
    // A read under way may end on an older state than the message's: it reads again then.
    if (record === 'read' || this.#reading.has(id)) this.#changed(id)
    else this.#watchers.notify(id, record)
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
