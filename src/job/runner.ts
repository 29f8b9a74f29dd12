import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { AttemptsExhaustedError, InvalidMessageError, JobCancelledError, JobTimeoutError, ResponseTooLargeError } from '../errors.js'
import type { Delivery, Disposition } from '../queue/queue.js'
import { withRetries } from '../retry.js'
import type { JobProgress, RequestSnapshot, ResultStore, StoredResponse } from '../store/store.js'
import { JobStatus } from '../store/store.js'
import { checkProgress, RUN_HEADER, type LongRunningJob, type RunRegistry } from './context.js'
import { decodeMessage, type JobMessage } from './message.js'
import { errorResponse, keepHeaders, MAX_RESPONSE_BYTES } from './response.js'

const ACK: Disposition = { ack: true }

/** Why an attempt stopped before its handler answered. */
const Stop = {
  timeout: 'timeout',
  shutdown: 'shutdown',
  deadline: 'deadline',
  leaseLost: 'lease-lost',
  cancelled: 'cancelled',
  /** The replay itself failed (the app is closing): not the handler's doing, so retried. */
  replayFailed: 'replay-failed'
} as const
type Stop = typeof Stop[keyof typeof Stop]

/**
 * How a job ended, for `onJobEnd`.
 *
 * @example
 * await app.register(longRunning, {
 *   onJobEnd: (job) => metrics.count(`jobs.${job.outcome}`, { ms: job.endedAt - job.startedAt })
 * })
 */
export const JobOutcome = {
  completed: 'completed',
  timedOut: 'timed-out',
  attemptsExhausted: 'attempts-exhausted',
  tooLarge: 'too-large',
  invalid: 'invalid'
} as const
export type JobOutcome = typeof JobOutcome[keyof typeof JobOutcome]

/** What `onJobEnd` hears once a job's final response is stored (by the process that ran it). */
export interface JobEndEvent {
  id: string
  outcome: JobOutcome
  /** The final response's status code. */
  statusCode: number
  /** The attempt that ended the job. */
  attempt: number
  /** When the HTTP side accepted the job (epoch ms). */
  queuedAt?: number
  /** When this attempt started, and when the job ended (epoch ms). */
  startedAt: number
  endedAt: number
}

/** Limits of one delivery, from the environment that runs it. */
export interface DeliveryLimits {
  /** Epoch ms by which this process must be done with the message (a Lambda's deadline). */
  deadline?: number
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
  readonly #store: ResultStore
  readonly #runs: RunRegistry
  readonly #leaseMs: number
  /** Set once shutting down; then each running attempt's stop function is called. */
  #shuttingDown = false
  readonly #running = new Set<{ id: string, stop: (why: Stop, reason: Error) => void }>()

  readonly #onJobEnd: ((event: JobEndEvent) => void) | undefined

  constructor (app: FastifyInstance, store: ResultStore, runs: RunRegistry, leaseSeconds: number, onJobEnd?: (event: JobEndEvent) => void) {
    this.#app = app
    this.#store = store
    this.#runs = runs
    this.#leaseMs = leaseSeconds * 1000
    this.#onJobEnd = onJobEnd
  }

  /** Handles one delivery of a queue message and says whether to delete it. */
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
    if (this.#shuttingDown) return { ack: false, delaySeconds: 0 }
    const owner = randomUUID()
    const now = Date.now()
    // With a deadline (Lambda) the claim simply lasts until then: no renewals to pay for.
    const leaseUntil = limits.deadline ?? now + this.#leaseMs
    const claim = await this.#store.claim(message.id, { owner, leaseUntil, now })
    if (!claim.claimed) {
      const record = claim.record
      if (record?.status === JobStatus.running) {
        // Another worker holds a live lease. Come back when it ends: if that worker died,
        // this delivery takes over; if it finished, this one is acknowledged then.
        return { ack: false, delaySeconds: Math.max(1, Math.ceil(((record.leaseUntil ?? now) - now) / 1000)) }
      }
      log.debug({ status: record?.status ?? 'unknown' }, 'job not runnable, message dropped')
      return ACK
    }
    if (claim.attempt > message.maxAttempts) {
      log.error({ attempts: claim.attempt - 1 }, 'job failed: attempts exhausted')
      return this.#finish(message, owner, errorResponse(new AttemptsExhaustedError(message.maxAttempts)), { outcome: JobOutcome.attemptsExhausted, attempt: claim.attempt, startedAt: now })
    }
    const request = message.request ?? claim.request
    if (request === undefined) {
      log.error('job request missing from both message and store')
      return this.#finish(message, owner, errorResponse(new InvalidMessageError('request missing')), { outcome: JobOutcome.invalid, attempt: claim.attempt, startedAt: now })
    }
    log.info({ attempt: claim.attempt }, 'job attempt started')
    return this.#attempt(message, request, owner, { attempt: claim.attempt, startedAt: now }, delivery, limits, log)
  }

  /** Aborts every attempt in this process; their messages come back for another worker. */
  shutdown (): void {
    this.#shuttingDown = true
    for (const run of this.#running) run.stop(Stop.shutdown, new Error('Worker shutting down'))
  }

  /**
   * Stops this process's attempt at job `id`, if it runs one, right after the job was cancelled
   * in the store. Workers elsewhere notice at their next lease renewal.
   */
  cancel (id: string): void {
    for (const run of this.#running) if (run.id === id) run.stop(Stop.cancelled, new JobCancelledError())
  }

  async #attempt (
    message: JobMessage,
    request: RequestSnapshot,
    owner: string,
    run: { attempt: number, startedAt: number },
    delivery: Delivery,
    limits: DeliveryLimits,
    log: FastifyBaseLogger
  ): Promise<Disposition> {
    const { id } = message
    const controller = new AbortController()
    const timers: NodeJS.Timeout[] = []
    let heartbeat: NodeJS.Timeout | undefined
    let running: { id: string, stop: (why: Stop, reason: Error) => void } | undefined
    const stopped = new Promise<Stop>(resolve => {
      const stop = (why: Stop, reason: Error): void => {
        resolve(why)
        controller.abort(reason)
      }
      timers.push(setTimeout(() => stop(Stop.timeout, new JobTimeoutError(message.timeoutSeconds)), message.timeoutSeconds * 1000))
      if (limits.deadline !== undefined) {
        // Leave a second to release the claim before the platform kills the process.
        const left = limits.deadline - Date.now() - 1000
        timers.push(setTimeout(() => stop(Stop.deadline, new Error('Worker out of time')), Math.max(0, left)))
      }
      running = { id, stop }
      this.#running.add(running)
      if (limits.deadline !== undefined) return
      heartbeat = setInterval(() => {
        this.#renew(id, owner, delivery).then(held => {
          if (!held) stop(Stop.leaseLost, new Error('Claim lost: the job was cancelled or taken over'))
        }, (error: unknown) => log.warn({ err: error }, 'lease renewal failed'))
      }, this.#leaseMs / 3)
    })
    if (this.#shuttingDown) running?.stop(Stop.shutdown, new Error('Worker shutting down'))

    const job: LongRunningJob = { id, attempt: run.attempt, signal: controller.signal, progress: this.#progress(id, owner, log) }
    const registration = this.#runs.add(job)
    try {
      const injected = this.#app.inject({
        method: request.method as 'GET',
        url: request.url,
        headers: { ...request.headers, [RUN_HEADER]: registration.token },
        ...(request.body === undefined ? {} : { payload: request.body })
      }).catch((error: unknown) => {
        log.error({ err: error }, 'job replay failed')
        return Stop.replayFailed
      })
      const outcome = await Promise.race([injected, stopped])
      if (outcome === Stop.timeout) {
        log.warn({ timeoutSeconds: message.timeoutSeconds }, 'job timed out')
        return await this.#finish(message, owner, errorResponse(controller.signal.reason), { ...run, outcome: JobOutcome.timedOut })
      }
      if (outcome === Stop.cancelled) {
        log.info('job cancelled while running')
        return ACK
      }
      if (typeof outcome === 'string') {
        log.warn({ reason: outcome }, 'job attempt stopped, message returned to the queue')
        if (outcome !== Stop.leaseLost) await this.#release(id, owner)
        return { ack: false, delaySeconds: 0 }
      }
      const body = outcome.rawPayload
      if (body.length > MAX_RESPONSE_BYTES) {
        return await this.#finish(message, owner, errorResponse(new ResponseTooLargeError(body.length, MAX_RESPONSE_BYTES)), { ...run, outcome: JobOutcome.tooLarge })
      }
      const response: StoredResponse = { statusCode: outcome.statusCode, headers: keepHeaders(outcome.headers), body }
      return await this.#finish(message, owner, response, { ...run, outcome: JobOutcome.completed })
    } finally {
      registration.remove()
      for (const timer of timers) clearTimeout(timer)
      clearInterval(heartbeat)
      if (running !== undefined) this.#running.delete(running)
    }
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
    const expiresAt = Date.now() + message.resultTtlSeconds * 1000
    const stored = await withRetries(async () => await this.#store.complete(message.id, owner, response, expiresAt), 4,
      (error, attempt) => this.#app.log.warn({ err: error, jobId: message.id, attempt }, 'storing the result failed, trying again'))
    if (!stored) return { ack: false, delaySeconds: Math.ceil(this.#leaseMs / 1000) }
    const event: JobEndEvent = { id: message.id, statusCode: response.statusCode, ...end, endedAt: Date.now() }
    if (message.enqueuedAt !== undefined) event.queuedAt = message.enqueuedAt
    this.#app.log.info({ jobId: event.id, job: event }, 'job ended')
    try {
      this.#onJobEnd?.(event)
    } catch (error) {
      // A metrics hook must never decide a job's fate.
      this.#app.log.error({ err: error, jobId: event.id }, 'onJobEnd threw')
    }
    return ACK
  }

  async #renew (id: string, owner: string, delivery: Delivery): Promise<boolean> {
    const held = await this.#store.renew(id, owner, Date.now() + this.#leaseMs)
    if (held) await delivery.extend(Math.ceil(this.#leaseMs / 1000))
    return held
  }

  /** Ends the lease now, so that the next delivery can take over without waiting for it. */
  async #release (id: string, owner: string): Promise<void> {
    await this.#store.renew(id, owner, 0).catch(() => {})
  }

  /** The job's `progress()`: validates at once, writes in the background, one write at a time. */
  #progress (id: string, owner: string, log: FastifyBaseLogger): (fraction: number, message?: string) => void {
    let next: JobProgress | undefined
    let writing = false
    const flush = async (): Promise<void> => {
      writing = true
      while (next !== undefined) {
        const progress = next
        next = undefined
        await this.#store.setProgress(id, owner, progress).catch((error: unknown) => log.warn({ err: error }, 'progress not stored'))
      }
      writing = false
    }
    return (fraction, message) => {
      next = checkProgress(fraction, message)
      if (!writing) void flush()
    }
  }
}
