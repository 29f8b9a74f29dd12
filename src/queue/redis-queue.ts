import type { Queue, Worker } from 'bullmq'
import { clockOption, type Clock } from '../clock.js'
import { MessageTooLargeError } from '../errors.js'
import { backendError, LazyRedis, redisPrefix, redisUrl } from '../redis-client.js'
import { redeliveryBackoff, type Backoff } from '../retry.js'
import { matching, number, optionNames, optionsObject } from '../validate.js'
import { sendDelay, type ConsumeOptions, type Consumer, type Delivery, type Disposition, type JobQueue, type SendOptions } from './queue.js'
import { RedisConsumer } from './redis-consumer.js'

/** Options of {@link redisQueue}. */
export interface RedisQueueOptions {
  /** The server: `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS (Redis ≥ 6.2 or Valkey). */
  url: string
  /**
   * The BullMQ queue's name (Bull Board and other BullMQ tools show it). Different apps on one
   * server need different names (or prefixes), besides different store prefixes: apps sharing a
   * queue take each other's messages and drop them as unknown. Replicas of one app share it.
   * @default 'long-running-jobs'
   */
  name?: string
  /**
   * BullMQ's key prefix (letters, digits, `_`, `.` or `-`): keys are `prefix:name:…`, so that
   * several queues can share a server.
   * @default 'bull'
   */
  prefix?: string
  /**
   * Largest message in bytes; larger requests travel through the store (claim-check).
   * @default 262144
   */
  maxMessageBytes?: number
  /**
   * How long a job a worker took stays locked before the job's lease renewals extend the lock
   * (SQS's visibility timeout). A worker that dies loses its jobs to another worker once this
   * and at most one `stalledIntervalSeconds` have passed.
   * @default 30
   */
  visibilityTimeoutSeconds?: number
  /**
   * How often each worker looks for jobs whose lock lapsed (BullMQ's `stalledInterval`).
   * @default half of visibilityTimeoutSeconds, at least 1
   */
  stalledIntervalSeconds?: number
  /**
   * Base of the back-off before a job whose handling failed (the store was down, say) comes
   * back: `retryDelaySeconds × 2^(receives − 1)`, at most 15 minutes.
   * @default 1
   */
  retryDelaySeconds?: number
  /**
   * The source of time for retry delays and back-offs after a failed fetch.
   * @default the system clock
   */
  clock?: Clock
}

type BullMq = typeof import('bullmq')

/**
 * How long one `add` may take before it counts as failed. An add is one short script: seconds
 * mean a hung server. Three tries (acceptance.ts) then stay within about 16 s, well below the
 * 30 s of the shortest platform timeout in docs/redis.md.
 */
const SEND_TIMEOUT_MS = 5000

const REDIS_QUEUE_OPTIONS = optionNames<RedisQueueOptions>({ url: true, name: true, prefix: true, maxMessageBytes: true, visibilityTimeoutSeconds: true, stalledIntervalSeconds: true, retryDelaySeconds: true, clock: true })

/**
 * The Redis (or Valkey) queue, on BullMQ: at-least-once like SQS, with delayed messages,
 * locks that the job's lease renewals extend, and stalled-job recovery, so that a job whose
 * worker died runs again elsewhere. Jobs show in BullMQ's tools (Bull Board). `bullmq` and
 * `ioredis` are loaded on first use.
 *
 * @example
 * await app.register(longRunning, {
 *   queue: redisQueue({ url: process.env.REDIS_URL! }),
 *   store: redisStore({ url: process.env.REDIS_URL! })
 * })
 */
export function redisQueue (options: RedisQueueOptions): JobQueue {
  const checked = optionsObject(options, 'redisQueue options', REDIS_QUEUE_OPTIONS, true, 'redisQueue')
  const visibility = number(checked.visibilityTimeoutSeconds, 'visibilityTimeoutSeconds', 30, 1, 43_200, true)
  return new RedisQueue(redisUrl(checked.url, 'url'), {
    name: checked.name === undefined ? 'long-running-jobs' : matching(checked.name, 'name', /^[\w.-]{1,100}$/, '1 to 100 letters, digits, `_`, `.` or `-`'),
    prefix: redisPrefix(checked.prefix, 'prefix', 'bull'),
    maxMessageBytes: number(checked.maxMessageBytes, 'maxMessageBytes', 256 * 1024, 1024, 64 * 1024 * 1024, true),
    lockMs: visibility * 1000,
    stalledMs: number(checked.stalledIntervalSeconds, 'stalledIntervalSeconds', Math.max(1, Math.ceil(visibility / 2)), 1, 3600, true) * 1000,
    redelivery: redeliveryBackoff(number(checked.retryDelaySeconds, 'retryDelaySeconds', 1, 0, 900)),
    clock: clockOption(checked.clock, 'clock')
  })
}

interface Settings { name: string, prefix: string, maxMessageBytes: number, lockMs: number, stalledMs: number, redelivery: Backoff, clock: Clock }

class RedisQueue implements JobQueue {
  readonly maxMessageBytes: number
  readonly redelivery: Backoff
  readonly inProcess = false
  readonly #settings: Settings
  readonly #redis: LazyRedis
  readonly #workers = new Set<Promise<Worker>>()
  #bullmq: Promise<BullMq> | undefined
  #queue: Promise<Queue> | undefined

  constructor (url: string, settings: Settings) {
    this.#settings = settings
    this.maxMessageBytes = settings.maxMessageBytes
    this.redelivery = settings.redelivery
    this.#redis = new LazyRedis(url)
  }

  async send (body: string, options?: SendOptions): Promise<void> {
    const delay = sendDelay(options)
    const size = Buffer.byteLength(body)
    if (size > this.maxMessageBytes) throw new MessageTooLargeError(size, this.maxMessageBytes)
    try {
      // Removed once acknowledged; the job's record in the store is what tells its result.
      await (await this.#queueOf()).add('job', body, { delay: delay * 1000, removeOnComplete: true, removeOnFail: 1000 })
    } catch (error) {
      throw backendError('add', error)
    }
  }

  consume (handler: (delivery: Delivery) => Promise<Disposition>, options: ConsumeOptions): Consumer {
    const worker = this.#worker()
    this.#workers.add(worker)
    worker.catch(() => {})
    return new RedisConsumer({ worker, redelivery: this.redelivery, clock: this.#settings.clock }, handler, options)
  }

  async close (): Promise<void> {
    const queue = this.#queue
    this.#queue = undefined
    await Promise.all([...this.#workers].map(async worker => await (await worker).close(true).catch(() => {})))
    await (await queue?.catch(() => undefined))?.close().catch(() => {})
    await this.#redis.close()
  }

  /** The producer, once connected; a first connection that fails is tried again by the next send. */
  async #queueOf (): Promise<Queue> {
    const made = this.#queue ?? (async () => {
      const { Queue } = await this.#module()
      // Fails fast while Redis is down, so that the HTTP side answers 503 at once (the producer
      // settings BullMQ recommends for adding jobs from HTTP endpoints). Auto-pipelined, as the
      // store's connection is: the adds of one event-loop turn leave in one write, not one each
      // (the producer only adds; the worker's connection, whose commands block, is not).
      // A server that hangs (paused, or a path that drops packets) answers nothing and refuses
      // nothing: the timeout turns that into a failed send (and drops the connection, see
      // redis-client.ts), so the HTTP side answers 503 within its tries (acceptance.ts) instead of never.
      const connection = await this.#redis.connected({ maxRetriesPerRequest: 1, enableOfflineQueue: false, enableAutoPipelining: true, commandTimeout: SEND_TIMEOUT_MS })
      const queue = new Queue(this.#settings.name, { connection, prefix: this.#settings.prefix, skipWaitingForReady: true })
      // Failures reach the caller of `add`; unheard, BullMQ would print each reconnection attempt.
      queue.on('error', () => {})
      return queue
    })()
    this.#queue = made
    return await made.catch(error => {
      if (this.#queue === made) this.#queue = undefined
      throw error
    })
  }

  async #worker (): Promise<Worker> {
    const { Worker } = await this.#module()
    // A worker's connection waits for Redis to come back (BullMQ requires it for blocking reads).
    const connection = await this.#redis.open({ maxRetriesPerRequest: null })
    return new Worker(this.#settings.name, null, {
      connection,
      prefix: this.#settings.prefix,
      autorun: false,
      lockDuration: this.#settings.lockMs,
      stalledInterval: this.#settings.stalledMs,
      // The store counts attempts (`maxAttempts`); a job whose worker died always comes back.
      maxStalledCount: Number.MAX_SAFE_INTEGER
    })
  }

  async #module (): Promise<BullMq> {
    this.#bullmq ??= import('bullmq')
    return await this.#bullmq
  }
}
