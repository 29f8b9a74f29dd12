import { clockOption, type Clock } from '../clock.js'
import { jobScope } from '../core/job-scope.js'
import { MessageTooLargeError, QueueFullError } from '../errors.js'
import { redeliveryBackoff, type Backoff } from '../retry.js'
import { number, optionalBoolean, optionNames, optionsObject } from '../validate.js'
import { sendDelay, type ConsumeOptions, type Consumer, type Delivery, type Disposition, type JobQueue, type SendOptions } from './queue.js'

interface Message {
  body: string
  receiveCount: number
}

/** Options of {@link memoryQueue}. */
export interface MemoryQueueOptions {
  /**
   * Largest message in bytes, as SQS's `MaximumMessageSize`; larger requests travel through the store.
   * @default 262144
   */
  maxMessageBytes?: number
  /**
   * Base of the back-off before a message whose handler threw comes back:
   * `retryDelaySeconds × 2^(receives − 1)`, at most 15 minutes.
   * @default 1
   */
  retryDelaySeconds?: number
  /**
   * Most jobs waiting to run (sent, not yet taken by a consumer). A `send` beyond it is refused
   * (`QueueFullError`: the client gets a 503 with `Retry-After`), so that a burst cannot pile up
   * more work than the process will ever get to. Redeliveries are never refused.
   * @default 1000
   */
  maxQueued?: number
  /**
   * The source of time for send delays and redelivery back-offs (the plugin's `clock` for its
   * default queue): tests move it.
   * @default the system clock
   */
  clock?: Clock
  /**
   * Plays a queue shared by several apps in one process, as SQS is shared by containers: the
   * plugin then treats it as it treats SQS (`inProcess` false), so that an app consuming it runs
   * the jobs it accepts itself with a backup message, and hands the jobs it runs back to the
   * queue at `app.close()` rather than letting them finish. For tests of that logic on a fake
   * clock. The messages still live in this process's memory only, and outlive `close()`:
   * delayed ones keep their timers until they come.
   * @default false
   */
  shared?: boolean
}

const MEMORY_QUEUE_OPTIONS = optionNames<MemoryQueueOptions>({ maxMessageBytes: true, retryDelaySeconds: true, maxQueued: true, clock: true, shared: true })

/**
 * The in-memory queue: the embedded default, jobs run in this process. At-least-once like SQS:
 * a message comes back until its consumer acknowledges it. Lost on restart.
 *
 * @example
 * await app.register(longRunning, { queue: memoryQueue({ maxMessageBytes: 65536 }) })
 */
export function memoryQueue (options?: MemoryQueueOptions): JobQueue {
  const checked = optionsObject(options, 'memoryQueue options', MEMORY_QUEUE_OPTIONS, false, 'memoryQueue')
  return new MemoryQueue(
    number(checked.maxMessageBytes, 'maxMessageBytes', 256 * 1024, 1024, 1024 * 1024 * 1024, true),
    redeliveryBackoff(number(checked.retryDelaySeconds, 'retryDelaySeconds', 1, 0, 900)),
    number(checked.maxQueued, 'maxQueued', 1000, 1, 1_000_000_000, true),
    clockOption(checked.clock, 'clock'),
    optionalBoolean(checked.shared, 'shared') ?? false
  )
}

class MemoryQueue implements JobQueue {
  readonly maxMessageBytes: number
  readonly redelivery: Backoff
  readonly inProcess: boolean
  readonly #scope = jobScope('memory-queue')
  readonly #ready: Message[] = []
  readonly #delayed = new Set<unknown>()
  readonly #pumps = new Set<() => void>()
  readonly #maxQueued: number
  readonly #clock: Clock

  constructor (maxMessageBytes: number, redelivery: Backoff, maxQueued: number, clock: Clock, shared: boolean) {
    this.maxMessageBytes = maxMessageBytes
    this.redelivery = redelivery
    this.#maxQueued = maxQueued
    this.#clock = clock
    this.inProcess = !shared
  }

  async send (body: string, options?: SendOptions): Promise<void> {
    const delay = sendDelay(options)
    const size = Buffer.byteLength(body)
    if (size > this.maxMessageBytes) throw new MessageTooLargeError(size, this.maxMessageBytes)
    if (this.queued() >= this.#maxQueued) throw new QueueFullError(this.#maxQueued)
    if (delay === 0) this.#push({ body, receiveCount: 0 })
    else this.#pushLater({ body, receiveCount: 0 }, delay)
  }

  queued (): number {
    return this.#ready.length + this.#delayed.size
  }

  consume (handler: (delivery: Delivery) => Promise<Disposition>, options: ConsumeOptions): Consumer {
    const inFlight = new Set<Promise<void>>()
    const deliver = async (message: Message): Promise<void> => {
      message.receiveCount += 1
      let disposition: Disposition
      try {
        disposition = await handler({ body: message.body, receiveCount: message.receiveCount, extend: async () => {} })
      } catch (error) {
        options.onError(error)
        disposition = { ack: false, delaySeconds: this.redelivery.delaySeconds(message.receiveCount) }
      }
      if (!disposition.ack) this.#pushLater(message, disposition.delaySeconds)
    }
    const pump = (): void => {
      while (inFlight.size + (options.busyElsewhere?.() ?? 0) < options.concurrency && this.#ready.length > 0) {
        const running = deliver(this.#ready.shift() as Message).finally(() => {
          inFlight.delete(running)
          pump()
        })
        inFlight.add(running)
      }
    }
    this.#pumps.add(pump)
    pump()
    return {
      stop: async () => {
        this.#pumps.delete(pump)
        await Promise.all(inFlight)
      },
      freed: () => { this.#scope(pump) }
    }
  }

  async close (): Promise<void> {
    // A shared queue outlives each app that closes it, as an SQS queue does: its delayed
    // messages still come, for the apps still consuming it.
    if (!this.inProcess) return
    for (const timer of this.#delayed) this.#clock.clearTimeout(timer)
    this.#delayed.clear()
  }

  #push (message: Message): void {
    this.#ready.push(message)
    this.#scope(() => { for (const pump of this.#pumps) pump() })
  }

  #pushLater (message: Message, delaySeconds: number): void {
    const timer = this.#clock.setTimeout(() => {
      this.#delayed.delete(timer)
      this.#push(message)
    }, delaySeconds * 1000)
    this.#delayed.add(timer)
  }
}
