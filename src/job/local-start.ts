import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import { jobScope } from '../core/job-scope.js'
import { sendableDelay, type JobQueue } from '../queue/queue.js'
import { retries, withRetries } from '../retry.js'
import { encodeMessage, type JobMessage } from './message.js'
import type { JobRunner } from './runner.js'
import type { RequestSnapshot } from '../core/wire.js'

/** A slot taken for one job run where it was accepted: the claim its record is created with. */
export interface LocalSlot {
  owner: string
  leaseUntil: number
  /** How long the backup message stays invisible: the lease in whole seconds (SQS delays at most 15 minutes). */
  backupDelaySeconds: number
}

/** What {@link LocalStarts} needs, resolved once at registration. */
export interface LocalStartSettings {
  concurrency: number
  leaseSeconds: number
  clock: Clock
  log: FastifyBaseLogger
}

/**
 * Runs jobs in the process that accepted them, when it consumes a shared queue itself (a
 * container with `consume: true`) and has a slot free. Otherwise each job would be sent, wait
 * for the queue to hand it back (SQS's receive, its long poll), and be claimed: a round trip,
 * a write and several milliseconds per job, only to run it where it already is.
 *
 * The job's record is created already claimed, and its message goes out at the same time,
 * delayed by the lease: a backup that matters only if this process dies. Then it finds the
 * lease lapsed and takes over, like any redelivery; while the job runs it finds the lease live
 * and goes out again; once the job is done it is dropped. An attempt that stops here goes
 * back to the queue with the delay a delivery would have been given: at once when the process
 * is closing. Jobs with an idempotency key always take the queue: their record may be someone
 * else's.
 */
export class LocalStarts {
  readonly #runner: JobRunner
  readonly #queue: JobQueue
  readonly #settings: LocalStartSettings
  #taken = 0
  readonly #runs = new Set<Promise<void>>()
  readonly #scope = jobScope('local-start')
  /** Told when a slot frees: the consumer may receive into it. */
  onFree?: () => void

  constructor (runner: JobRunner, queue: JobQueue, settings: LocalStartSettings) {
    this.#runner = runner
    this.#queue = queue
    this.#settings = settings
  }

  /** Slots held by jobs run here without a delivery (the consumer's `busyElsewhere`). */
  get busy (): number {
    return this.#taken
  }

  /** Takes a slot if one is free now, counting the consumer's deliveries in hand; else `undefined`. */
  reserve (): LocalSlot | undefined {
    const { concurrency, leaseSeconds, clock } = this.#settings
    if (this.#runner.inHand + this.#taken >= concurrency) return undefined
    this.#taken += 1
    return { owner: randomUUID(), leaseUntil: clock.now() + leaseSeconds * 1000, backupDelaySeconds: sendableDelay(leaseSeconds) }
  }

  /** Gives a slot back: its job was not created after all, or its run has ended. */
  freeSlot (): void {
    this.#taken -= 1
    this.onFree?.()
  }

  /**
   * Runs the job created claimed for `slot`. `message` is the one queued (without `request` if
   * that waits in the store); `request` is the request itself.
   */
  start (slot: LocalSlot, message: JobMessage, request: RequestSnapshot): void {
    const run = this.#scope(async () => {
      const disposition = await this.#runner.runClaimed({ ...message, request }, slot, this.#settings.clock.now())
      if (!disposition.ack) await this.#requeue(message, disposition.delaySeconds)
    }).finally(() => {
      this.#runs.delete(run)
      this.freeSlot()
    })
    this.#runs.add(run)
  }

  /** Resolves once the runs started here have ended and any stopped one is back in the queue. */
  async settle (): Promise<void> {
    await Promise.all(this.#runs)
  }

  /** The attempt stopped here: the job goes to the queue now, not only when its backup shows. */
  async #requeue (message: JobMessage, delaySeconds: number): Promise<void> {
    const { clock, log } = this.#settings
    const body = encodeMessage(message)
    const options = { delaySeconds: sendableDelay(delaySeconds) }
    await withRetries(async () => await this.#queue.send(body, options), {
      ...retries.send,
      clock,
      onRetry: (error, attempt) => log.warn({ err: error, jobId: message.id, attempt }, 'queueing a stopped job failed, trying again')
    }).catch((error: unknown) => log.error({ err: error, jobId: message.id }, 'queueing a stopped job failed: its backup message takes it over after the lease'))
  }
}
