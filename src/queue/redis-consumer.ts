import { randomUUID } from 'node:crypto'
import type { Job, Worker } from 'bullmq'
import { sleep, type Clock } from '../clock.js'
import { backendError } from '../redis-client.js'
import type { Backoff } from '../retry.js'
import type { ConsumeOptions, Consumer, Delivery, Disposition } from './queue.js'

/** What a {@link RedisConsumer} needs of its queue. */
export interface RedisConsumerSettings {
  /** A BullMQ worker in manual mode (no processor, not running): this class fetches for it. */
  worker: Promise<Worker>
  redelivery: Backoff
  clock: Clock
}

/**
 * The container worker's side of the Redis queue: BullMQ's worker in manual mode, which maps
 * one to one onto SQS's receive, visibility and delete. `getNextJob` takes a job with a lock
 * (the visibility timeout) under a token of its own; `extend` is `extendLock`; `ack` is
 * `moveToCompleted`; a retry is `moveToDelayed`, and BullMQ's stalled-job check hands a job
 * whose lock lapsed (its worker died) to the next worker, as SQS does once the visibility ends.
 * `attemptsStarted` counts the deliveries (SQS's `ApproximateReceiveCount`).
 */
export class RedisConsumer implements Consumer {
  readonly #settings: RedisConsumerSettings
  readonly #handler: (delivery: Delivery) => Promise<Disposition>
  readonly #options: ConsumeOptions
  readonly #inFlight = new Set<Promise<void>>()
  readonly #loop: Promise<void>
  #stopping = false
  #wake: () => void = () => {}

  constructor (settings: RedisConsumerSettings, handler: (delivery: Delivery) => Promise<Disposition>, options: ConsumeOptions) {
    this.#settings = settings
    this.#handler = handler
    this.#options = options
    this.#loop = this.#run()
  }

  freed (): void {
    this.#wake()
  }

  async stop (): Promise<void> {
    this.#stopping = true
    this.#wake()
    // Ends a fetch that waits for jobs (it closes the blocking connection); jobs in hand finish.
    await (await this.#settings.worker).close(true).catch(error => { this.#options.onError(backendError('worker close', error)) })
    await this.#loop
    await Promise.all(this.#inFlight)
  }

  async #run (): Promise<void> {
    const worker = await this.#settings.worker
    // A server that is down shows in every fetch; what else fails (the stalled-job check) is told.
    worker.on('error', error => { if ((error as { syscall?: string }).syscall === undefined) this.#options.onError(backendError('worker', error)) })
    await worker.startStalledCheckTimer().catch(error => { this.#options.onError(backendError('stalled check', error)) })
    while (!this.#stopping) {
      await this.#slot()
      if (this.#stopping) return
      const token = randomUUID()
      let job: Job | undefined
      try {
        job = await worker.getNextJob(token, { block: true })
      } catch (error) {
        if (this.#stopping) return
        this.#options.onError(backendError('getNextJob', error))
        await sleep(this.#settings.clock, 1000)
        continue
      }
      if (job !== undefined) this.#start(job, token)
    }
  }

  /** Resolves once a slot of the concurrency is free, or the consumer stops. */
  async #slot (): Promise<void> {
    while (!this.#stopping && this.#inFlight.size + (this.#options.busyElsewhere?.() ?? 0) >= this.#options.concurrency) {
      await new Promise<void>(resolve => { this.#wake = resolve })
    }
  }

  #start (job: Job, token: string): void {
    const running = this.#deliver(job, token).finally(() => {
      this.#inFlight.delete(running)
      this.#wake()
    })
    this.#inFlight.add(running)
  }

  async #deliver (job: Job, token: string): Promise<void> {
    const receiveCount = Math.max(1, job.attemptsStarted)
    let disposition: Disposition
    try {
      disposition = await this.#handler({
        body: job.data as string,
        receiveCount,
        extend: async seconds => {
          try {
            await job.extendLock(token, Math.ceil(seconds) * 1000)
          } catch (error) {
            throw backendError('extendLock', error)
          }
        }
      })
    } catch (error) {
      this.#options.onError(error)
      disposition = { ack: false, delaySeconds: this.#settings.redelivery.delaySeconds(receiveCount) }
    }
    try {
      if (disposition.ack) await job.moveToCompleted('', token, false)
      else await job.moveToDelayed(this.#settings.clock.now() + disposition.delaySeconds * 1000, token)
    } catch (error) {
      // The lock lapses and the stalled-job check hands the job out again: nothing is lost.
      this.#options.onError(backendError(disposition.ack ? 'moveToCompleted' : 'moveToDelayed', error))
    }
  }
}
