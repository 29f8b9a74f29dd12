import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { Clock } from '../clock.js'
import {
  AttemptsExhaustedError, InvalidMessageError, JobCancelledError, JobTimeoutError, LeaseLostError, ResponseTooLargeError, WorkerDeadlineError,
  WorkerStoppingError
} from '../errors.js'
import { sendableDelay, type Delivery, type Disposition, type JobQueue } from '../queue/queue.js'
import { retries, withRetries, type Backoff } from '../retry.js'
import type { ResultBodies } from '../results/results.js'
import type { JobStore } from '../store/store.js'
import { JobStatus } from '../core/job-state.js'
import { Attempt } from './attempt.js'
import type { RunRegistry } from './context.js'
import { resultExpiry } from './lifetime.js'
import { decodeMessage, type JobMessage } from './message.js'
import { JobOutcome, type DeliveryLimits, type JobEndEvent } from './outcome.js'
import { progressReporter } from './progress.js'
import { errorResponse, keepHeaders, placeResult } from './response.js'
import type { RequestSnapshot, StoredResponse } from '../core/wire.js'

const ACK: Disposition = { ack: true }
/** Back to the queue at once: this attempt stopped for reasons of its own process. */
const AGAIN: Disposition = { ack: false, delaySeconds: 0 }

/** What the runner needs, resolved once at registration. */
export interface RunnerSettings {
  store: JobStore
  runs: RunRegistry
  leaseSeconds: number
  /** Redelivery of a message whose handling failed, by receive count. */
  redelivery: Backoff
  clock: Clock
  onJobEnd?: ((event: JobEndEvent) => void) | undefined
  /** Where bodies too large for the store or the front end go (`results`); without it they end as a 502. */
  results?: ResultBodies | undefined
  /** Told of every final response this process stored: its waiting requests need not read it. */
  onStored?: ((id: string, response: StoredResponse, expiresAt: number) => void) | undefined
  /** Where a backup message that finds its job still running goes again (see `JobMessage.backup`). */
  queue: Pick<JobQueue, 'send'>
}

/**
 * Runs job messages: claims the job in the store, replays the original request through the
 * app (every hook, parser, validator, serializer and error handler), and stores the response.
 *
 * The message is acknowledged only once the store holds a final response for the job, or the
 * job is unknown: in every other case it comes back, so that no accepted job is ever lost.
 */
export class JobRunner {
  readonly #app: FastifyInstance
  readonly #settings: RunnerSettings
  readonly #leaseMs: number
  #shuttingDown = false
  readonly #running = new Set<Attempt>()
  /** Deliveries with an attempt under way, until their outcome is stored: what `settle` waits for. */
  readonly #delivering = new Set<Promise<unknown>>()

  constructor (app: FastifyInstance, settings: RunnerSettings) {
    this.#app = app
    this.#settings = settings
    this.#leaseMs = settings.leaseSeconds * 1000
  }

  /** Attempts running in this process now. */
  get running (): number {
    return this.#running.size
  }

  /**
   * Handles one delivery of a queue message and says whether to delete it. Never rejects: a
   * backend failure hands the message back after the redelivery back-off.
   */
  async handle (delivery: Delivery, limits: DeliveryLimits = {}): Promise<Disposition> {
    let message: JobMessage
    try {
      message = decodeMessage(delivery.body)
    } catch (error) {
      // Retrying could never help: drop it loudly instead of looping until the DLQ.
      this.#app.log.error({ err: error, receiveCount: delivery.receiveCount }, 'dropping invalid job message')
      return ACK
    }
    const log = this.#app.log.child({ jobId: message.id })
    const delivering = this.#deliver(message, delivery, limits, log)
    this.#delivering.add(delivering)
    try {
      return await this.#settled(delivering, delivery, log)
    } finally {
      this.#delivering.delete(delivering)
    }
  }

  /** Runs job `message.id`, created here already claimed by `owner` (`local-start.ts`): no delivery to extend. Never rejects. */
  async runClaimed (message: JobMessage, owner: string, startedAt: number): Promise<Disposition> {
    if (this.#shuttingDown) return await this.#release(message.id, owner).then(() => AGAIN)
    const delivery: Delivery = { body: '', receiveCount: 1, extend: async () => {} }
    const log = this.#app.log.child({ jobId: message.id })
    return await this.#settled(this.#attempt(message, owner, { attempt: 1, startedAt }, message.request, delivery, {}, log), delivery, log)
  }

  /** Deliveries in hand (those `handle` is working on), local runs aside. */
  get inHand (): number {
    return this.#delivering.size
  }

  async #settled (delivering: Promise<Disposition>, delivery: Delivery, log: FastifyBaseLogger): Promise<Disposition> {
    try {
      return await delivering
    } catch (error) {
      log.error({ err: error, receiveCount: delivery.receiveCount }, 'job delivery failed')
      return { ack: false, delaySeconds: this.#settings.redelivery.delaySeconds(delivery.receiveCount) }
    }
  }

  /** Resolves once the deliveries under way in this process have ended, or after `ms` at the latest. */
  async settle (ms: number): Promise<void> {
    if (this.#delivering.size === 0) return
    const { clock } = this.#settings
    let timer: unknown
    const timeUp = new Promise<void>(resolve => { timer = clock.setTimeout(resolve, ms) })
    const settled = Promise.allSettled([...this.#delivering])
    await Promise.race([settled, timeUp])
    clock.clearTimeout(timer)
  }

  /** Aborts every attempt in this process; their messages come back for another worker. */
  shutdown (): void {
    this.#shuttingDown = true
    for (const attempt of this.#running) attempt.stop(new WorkerStoppingError())
  }

  /**
   * Stops this process's attempt at job `id`, if it runs one, right after the job was cancelled
   * in the store. Workers elsewhere notice at their next lease renewal.
   */
  cancel (id: string): void {
    for (const attempt of this.#running) if (attempt.id === id) attempt.stop(new JobCancelledError())
  }

  async #deliver (message: JobMessage, delivery: Delivery, limits: DeliveryLimits, log: FastifyBaseLogger): Promise<Disposition> {
    if (this.#shuttingDown) return AGAIN
    const { store, clock } = this.#settings
    const owner = randomUUID()
    const now = clock.now()
    const claim = await store.claim(message.id, { owner, leaseUntil: limits.deadline ?? now + this.#leaseMs, now })
    if (!claim.claimed) {
      const record = claim.record
      if (record?.status === JobStatus.running) {
        // Another worker holds a live lease. Come back when it ends: if that worker died,
        // this delivery takes over; if it finished, this one is acknowledged then. A backup
        // goes out again instead: a job run where it was accepted renews no message, and
        // counting receives for it would move its backup to the dead-letter queue mid-run.
        const delaySeconds = Math.max(1, Math.ceil(((record.leaseUntil ?? now) - now) / 1000))
        if (message.backup !== true) return { ack: false, delaySeconds }
        await this.#settings.queue.send(delivery.body, { delaySeconds: sendableDelay(delaySeconds) })
        return ACK
      }
      // A finished job's duplicate is routine; a job gone before it ran means its record expired
      // before its queue's last delivery (a delivery window longer than configured).
      if (record === undefined) log.warn({ enqueuedAt: message.enqueuedAt }, 'job unknown or expired, message dropped')
      else log.debug({ status: record.status }, 'job not runnable, message dropped')
      return ACK
    }
    return await this.#attempt(message, owner, { attempt: claim.attempt, startedAt: now }, message.request ?? claim.request, delivery, limits, log)
  }

  /** Runs one attempt this process holds the claim of, and stores its outcome. */
  async #attempt (message: JobMessage, owner: string, run: { attempt: number, startedAt: number }, request: RequestSnapshot | undefined,
    delivery: Delivery, limits: DeliveryLimits, log: FastifyBaseLogger): Promise<Disposition> {
    const { store, clock } = this.#settings
    const now = run.startedAt
    if (run.attempt > message.maxAttempts) {
      log.error({ attempts: run.attempt - 1 }, 'job failed: attempts exhausted')
      return await this.#finish(message, owner, errorResponse(new AttemptsExhaustedError(message.maxAttempts)), { ...run, outcome: JobOutcome.attemptsExhausted })
    }
    if (request === undefined) {
      log.error('job request missing from both message and store')
      return await this.#finish(message, owner, errorResponse(new InvalidMessageError('request missing')), { ...run, outcome: JobOutcome.invalid })
    }
    log.info({ attempt: run.attempt }, 'job attempt started')
    const attempt = new Attempt(this.#app, this.#settings.runs, clock, {
      id: message.id,
      attempt: run.attempt,
      request,
      timeoutSeconds: message.timeoutSeconds,
      ...(limits.deadline === undefined ? {} : { deadline: limits.deadline }),
      renewEveryMs: this.#leaseMs / 3,
      renew: async () => await this.#renew(message.id, owner, delivery),
      progress: progressReporter(async progress => await store.setProgress(message.id, owner, progress), log),
      log
    })
    this.#running.add(attempt)
    if (this.#shuttingDown) attempt.stop(new WorkerStoppingError())
    try {
      const end = await attempt.run()
      if (end.kind === 'response') {
        const head = { statusCode: end.response.statusCode, headers: keepHeaders(end.response.headers) }
        const placed = placeResult(head, end.response, message.responseLimit, this.#settings.results?.thresholdBytes)
        if (placed.kind === 'outside') return await this.#storeOutside(message, owner, delivery, head, placed.chunks, run, log)
        if (placed.kind === 'stored') return await this.#finish(message, owner, placed.response, { ...run, outcome: JobOutcome.completed })
        log.warn({ bytes: placed.bytes, limit: placed.limit }, 'job result too large')
        return await this.#finish(message, owner, errorResponse(new ResponseTooLargeError(placed.bytes, placed.limit)), { ...run, outcome: JobOutcome.tooLarge })
      }
      if (end.kind === 'failed') {
        // The replay itself failed (the app is closing): not the handler's doing, so retried.
        log.error({ err: end.error }, 'job replay failed')
        await this.#release(message.id, owner)
        return AGAIN
      }
      const { reason } = end
      if (reason instanceof JobTimeoutError || reason instanceof WorkerDeadlineError) {
        // The platform's deadline is this attempt's time limit too: another attempt would only
        // run out of time again (and be billed for it), so the job ends here as a timeout.
        const timeout = reason instanceof JobTimeoutError ? reason : new JobTimeoutError(Math.round((clock.now() - now) / 1000))
        log.warn({ timeoutSeconds: message.timeoutSeconds, deadline: limits.deadline }, 'job timed out')
        return await this.#finish(message, owner, errorResponse(timeout), { ...run, outcome: JobOutcome.timedOut })
      }
      if (reason instanceof JobCancelledError) {
        log.info('job cancelled while running')
        return ACK
      }
      log.warn({ reason: reason.code }, 'job attempt stopped, message returned to the queue')
      // A lost claim is someone else's now: nothing to release.
      if (!(reason instanceof LeaseLostError)) await this.#release(message.id, owner)
      return AGAIN
    } finally {
      this.#running.delete(attempt)
    }
  }

  /**
   * Puts the body in the results store and stores the response that names it. A failed upload
   * is a failed attempt: the claim goes back and the job runs again.
   */
  async #storeOutside (
    message: JobMessage,
    owner: string,
    delivery: Delivery,
    head: Omit<StoredResponse, 'body'>,
    chunks: readonly Buffer[],
    run: { attempt: number, startedAt: number },
    log: FastifyBaseLogger
  ): Promise<Disposition> {
    let external
    try {
      external = await (this.#settings.results as ResultBodies).put(message.id, owner, chunks, head.headers)
    } catch (error) {
      log.error({ err: error, bytes: chunks.reduce((sum, chunk) => sum + chunk.length, 0) }, 'storing the result body outside failed')
      await this.#release(message.id, owner)
      return { ack: false, delaySeconds: this.#settings.redelivery.delaySeconds(delivery.receiveCount) }
    }
    return await this.#finish(message, owner, { ...head, body: Buffer.alloc(0), external }, { ...run, outcome: JobOutcome.completed })
  }

  /**
   * Stores the final response. If the claim was lost meanwhile, the newer attempt decides.
   * A failing write is tried again here, a few times, before the message goes back: the
   * response may have taken minutes to compute, and only this process holds it.
   */
  async #finish (
    message: JobMessage,
    owner: string,
    response: StoredResponse,
    end: { outcome: JobOutcome, attempt: number, startedAt: number }
  ): Promise<Disposition> {
    const { store, clock, onJobEnd } = this.#settings
    const expiresAt = resultExpiry(clock.now(), message.resultTtlSeconds)
    const stored = await withRetries(async () => await store.complete(message.id, owner, response, expiresAt), {
      ...retries.write,
      clock,
      onRetry: (error, attempt) => this.#app.log.warn({ err: error, jobId: message.id, attempt }, 'storing the result failed, trying again')
    })
    if (!stored) return { ack: false, delaySeconds: Math.ceil(this.#leaseMs / 1000) }
    this.#settings.onStored?.(message.id, response, expiresAt)
    const event: JobEndEvent = { id: message.id, statusCode: response.statusCode, ...end, endedAt: clock.now() }
    if (message.enqueuedAt !== undefined) event.queuedAt = message.enqueuedAt
    this.#app.log.info({ jobId: event.id, job: event }, 'job ended')
    try {
      onJobEnd?.(event)
    } catch (error) {
      // A metrics hook must never decide a job's fate.
      this.#app.log.error({ err: error, jobId: event.id }, 'onJobEnd threw')
    }
    return ACK
  }

  async #renew (id: string, owner: string, delivery: Delivery): Promise<boolean> {
    const held = await this.#settings.store.renew(id, owner, this.#settings.clock.now() + this.#leaseMs)
    if (held) await delivery.extend(Math.ceil(this.#leaseMs / 1000))
    return held
  }

  /** Ends the lease now, so that the next delivery can take over without waiting for it. */
  async #release (id: string, owner: string): Promise<void> {
    await this.#settings.store.renew(id, owner, 0).catch(() => {})
  }
}
