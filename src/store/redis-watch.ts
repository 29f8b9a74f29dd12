import type { Redis } from 'ioredis'
import type { Clock } from '../clock.js'
import { JobStatus, type JobRecord } from '../core/job-state.js'
import { Watchers, type Listener } from './watchers.js'

/**
 * How often the subscriber connection is pinged; a ping not answered by the next one drops
 * the connection (so a dead path is noticed within two of these).
 */
export const HEARTBEAT_MS = 5000

/** What a change message tells: the job's id, and (decoded on demand) its record or that it must be read. */
export interface Announced { id: string, record: () => JobRecord | undefined | 'read' }

/**
 * The Redis store's change feed: one subscriber connection per store, on the store's one
 * channel, whose messages tell of jobs that changed: the job's id and its record but the
 * response. A message for a job watched here tells its listeners that record, so that waiting
 * requests in every process follow their job with no read and wake the moment it ends; the job
 * is read when the message does not tell enough (a finished job's response, a deletion). A
 * change published while the subscription was not live (the first subscription, a
 * reconnection) would be missed: each time it becomes live, every watched job is read again.
 * A job that this process ends is told to its watchers here at once ({@link RedisWatch.ended}).
 * A subscriber that hears nothing cannot tell a quiet channel from a dead connection: a
 * heartbeat tells them apart ({@link RedisWatch#heartbeat}).
 */
export class RedisWatch {
  readonly #watchers = new Watchers()
  readonly #read: (id: string) => Promise<JobRecord | undefined>
  readonly #decode: (message: string) => Announced
  readonly #connect: () => Promise<Redis>
  readonly #channel: string
  /** The store's clock: it paces the heartbeat. */
  readonly #clock: Clock
  /** Reads under way, and whether another change came in meanwhile (then it reads again). */
  readonly #reading = new Map<string, { again: boolean }>()
  /**
   * Watched jobs told as done. Done is final, and a job's news comes by two ways (the channel
   * and this process's own writes), so any other state heard later is older news: not told.
   */
  readonly #done = new Set<string>()
  /** Jobs this process is ending, and whether a read waits for that. */
  readonly #ending = new Map<string, { count: number, read: boolean }>()
  #subscriber: Promise<Redis> | undefined
  #live = false
  #heartbeatTimer: unknown
  #closed = false

  constructor (channel: string, clock: Clock, connect: () => Promise<Redis>, read: (id: string) => Promise<JobRecord | undefined>, decode: (message: string) => Announced) {
    this.#channel = channel
    this.#clock = clock
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
    return () => {
      stop()
      if (!this.#watchers.has(id)) this.#done.delete(id)
    }
  }

  /**
   * This process is ending job `id` (a completion or a cancellation under way): until
   * {@link RedisWatch.ended}, a read the job's change message asks for waits for the end's own
   * record, which comes with the command's reply (the message may come first, on another
   * connection).
   */
  ending (id: string): void {
    if (!this.#watchers.has(id)) return
    const ending = this.#ending.get(id)
    if (ending === undefined) this.#ending.set(id, { count: 1, read: false })
    else ending.count += 1
  }

  /**
   * The end of job `id` is over: with `record` (done, with its response) when it ended the job,
   * which its watchers here then hear without a read; otherwise a read that waited is made now.
   */
  ended (id: string, record: JobRecord | undefined): void {
    const ending = this.#ending.get(id)
    if (ending !== undefined && --ending.count === 0) this.#ending.delete(id)
    if (record !== undefined) {
      if (this.#watchers.has(id)) this.#tell(id, record)
    } else if (ending?.read === true) {
      ending.read = false
      this.#changed(id)
    }
  }

  /** Stops the heartbeat (the store closes the connection itself). */
  close (): void {
    this.#closed = true
    this.#clock.clearTimeout(this.#heartbeatTimer)
  }

  async #subscribe (): Promise<Redis> {
    const subscriber = await this.#connect()
    if (!this.#closed) this.#heartbeat(subscriber)
    subscriber.on('message', (_channel: string, message: string) => { this.#heard(message) })
    // ioredis subscribes again after a reconnection; what changed while it was away is read.
    subscriber.on('ready', () => { void this.#resubscribed(subscriber) })
    // The subscriber's commands wait for the server (it may be down now): live once it answers.
    await subscriber.subscribe(this.#channel)
    this.#becameLive()
    return subscriber
  }

  /**
   * A path that went silent (a NAT or load balancer that forgot the idle connection, a
   * partition) leaves the subscriber connected to nobody, and nothing would ever tell it: every
   * wait would then last its whole `waitSeconds`. A PING every {@link HEARTBEAT_MS} (allowed in
   * subscribe mode; it reads no job) must be answered before the next one goes out, else the
   * connection is dropped and the watched jobs are read, and ioredis opens another connection,
   * which subscribes again and reads them again (`#resubscribed`): nothing published meanwhile
   * is missed, even while the new connection fares no better.
   */
  #heartbeat (subscriber: Redis): void {
    let unanswered: object | undefined
    const beat = (): void => {
      this.#heartbeatTimer = this.#clock.setTimeout(beat, HEARTBEAT_MS)
      // While it reconnects, ioredis's own timeouts and retries are at work.
      if (subscriber.status !== 'ready') return
      if (unanswered !== undefined) {
        unanswered = undefined
        // Ends the socket, and destroys it if its peer never answers the close (ioredis's
        // disconnectTimeout), then reconnects.
        subscriber.disconnect(true)
        // Changes of the silent time are read now, not only once the new subscription answers:
        // a path that stays deaf (say, to every subscriber) would otherwise never let it.
        for (const id of this.#watchers.ids()) this.#changed(id)
        return
      }
      const ping = {}
      unanswered = ping
      // A ping of a dropped connection is sent again on the next one: only this one's answer counts.
      subscriber.ping().then(() => { if (unanswered === ping) unanswered = undefined }, () => {})
    }
    this.#heartbeatTimer = this.#clock.setTimeout(beat, HEARTBEAT_MS)
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
    const announced = this.#decode(message)
    const { id } = announced
    // Every process hears every job's changes: only those of jobs watched here are decoded.
    if (!this.#watchers.has(id)) return
    // A read under way may end on an older state than the message's: it reads again then. An
    // end under way here brings the latest state itself (or the read that waits for it).
    const record = this.#reading.has(id) || this.#ending.has(id) ? 'read' : announced.record()
    if (record === 'read') this.#changed(id)
    else this.#tell(id, record)
  }

  #tell (id: string, record: JobRecord | undefined): void {
    if (record !== undefined && record.status !== JobStatus.done && this.#done.has(id)) return
    if (record?.status === JobStatus.done && this.#watchers.has(id)) this.#done.add(id)
    this.#watchers.notify(id, record)
  }

  /** Reads job `id` for its listeners; one read at a time per job, and one more if it changed meanwhile. */
  #changed (id: string): void {
    if (!this.#watchers.has(id)) return
    const ending = this.#ending.get(id)
    if (ending !== undefined) {
      ending.read = true
      return
    }
    const reading = this.#reading.get(id)
    if (reading !== undefined) {
      reading.again = true
      return
    }
    const state = { again: false }
    this.#reading.set(id, state)
    this.#read(id).then(record => { this.#tell(id, record) }, () => {}).finally(() => {
      this.#reading.delete(id)
      if (state.again) this.#changed(id)
    })
  }
}
