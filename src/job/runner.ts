import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { AttemptsExhaustedError, InvalidMessageError, JobCancelledError, WorkerStoppingError } from '../errors.js'
import { sendableDelay, type Delivery, type Disposition, type JobQueue } from '../queue/queue.js'
import { JobStatus } from '../core/job-state.js'
import { isJobId } from '../core/job-id.js'
import { MAX_RESULT_TTL_SECONDS } from '../core/job-limits.js'
import { isObject, type RequestSnapshot } from '../core/wire.js'
import { Attempt } from './attempt.js'
import type { RunRegistry } from './context.js'
import { dispositionOf } from './disposition.js'
import { ACK, AGAIN, finish, type FinishSettings, type Finishing } from './finish.js'
import { Lease } from './lease.js'
import { decodeMessage, messageDigest, messageJson, type JobMessage } from './message.js'
import { JobOutcome, type DeliveryLimits } from './outcome.js'
import { progressReporter } from './progress.js'
import { errorResponse } from '../core/error-response.js'
import { MAX_RESPONSE_BYTES } from '../core/response-limits.js'

/**
 * A message whose job this store does not know, though no record could have expired yet: most
 * often another app that shares the queue (the same Redis queue name and prefix, or SQS queue)
 * with a store of its own, whose jobs this worker then drops.
 */
const UNKNOWN_JOB = 'job unknown to this store though its message is recent, message dropped: does another app share this queue? Give each app its own queue (redisQueue name or prefix; docs/redis.md)'

/** What the runner needs, resolved once at registration (`log` is the app's). */
export interface RunnerSettings extends Omit<FinishSettings, 'log'> {
  runs: RunRegistry
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
  readonly #settings: FinishSettings & RunnerSettings
  /** Aborted at shutdown: attempts stop, and so do the tries to store a result (`finish`). */
  readonly #stopping = new AbortController()
  readonly #running = new Set<Attempt>()
  /** Deliveries with an attempt under way, until their outcome is stored: what `settle` waits for. */
  readonly #delivering = new Set<Promise<unknown>>()

  constructor (app: FastifyInstance, settings: RunnerSettings) {
    this.#app = app
    this.#settings = settings
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
      return await this.#settled(this.#endInvalid(delivery, error as Error), delivery, this.#app.log)
    }
    const log = this.#app.log.child({ jobId: message.id, ...(message.requestId === undefined ? {} : { queuedBy: message.requestId }) })
    const delivering = this.#deliver(message, delivery, limits, log)
    this.#delivering.add(delivering)
    try {
      return await this.#settled(delivering, delivery, log)
    } finally {
      this.#delivering.delete(delivering)
    }
  }

  /**
   * A message no worker of this version can run, but the one its job was accepted with (a
   * sender of another version, say): the job ends with the reason, which its client gets within
   * one wait, rather than waiting for an expiry. Any other message, the job's claim refuses.
   */
  async #endInvalid (delivery: Delivery, error: Error): Promise<Disposition> {
    let raw: unknown
    try {
      raw = JSON.parse(delivery.body)
    } catch {
      return ACK
    }
    if (!isObject(raw) || !isJobId(raw.id)) return ACK
    const { store, clock, leaseSeconds } = this.#settings
    const owner = randomUUID()
    const now = clock.now()
    const leaseUntil = now + leaseSeconds * 1000
    const claim = await store.claim(raw.id, { owner, leaseUntil, now, messageDigest: messageDigest(raw) })
    if (!claim.claimed) return ACK
    const ttl = raw.resultTtlSeconds
    const message: JobMessage = { id: raw.id, timeoutSeconds: 1, maxAttempts: 1, resultTtlSeconds: typeof ttl === 'number' && ttl > 0 && ttl <= MAX_RESULT_TTL_SECONDS ? ttl : 3600 }
    const log = this.#app.log.child({ jobId: raw.id })
    const job = this.#finishing(message, owner, { attempt: claim.attempt, startedAt: now }, { until: leaseUntil, renewed: true }, delivery, log)
    return await finish(this.#settings, job, errorResponse(error as Error & { code: string }), JobOutcome.invalid)
  }

  /** Runs job `message.id`, created here already claimed by `claim.owner` until `claim.leaseUntil` (`local-start.ts`): no delivery to extend. Never rejects. */
  async runClaimed (message: JobMessage, claim: { owner: string, leaseUntil: number }, startedAt: number): Promise<Disposition> {
    const delivery: Delivery = { body: '', receiveCount: 1, extend: async () => {} }
    const log = this.#app.log.child({ jobId: message.id, ...(message.requestId === undefined ? {} : { queuedBy: message.requestId }) })
    const job = this.#finishing(message, claim.owner, { attempt: 1, startedAt }, { until: claim.leaseUntil, renewed: true }, delivery, log)
    if (this.#stopping.signal.aborted) return await job.lease.end().then(() => AGAIN)
    return await this.#settled(this.#attempt(job, message.request, {}), delivery, log)
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
    this.#stopping.abort()
    for (const attempt of this.#running) attempt.stop(new WorkerStoppingError())
  }

  /**
   * Stops this process's attempt at job `id`, if it runs one, right after the job was cancelled
   * in the store. Workers elsewhere notice at their next lease renewal, refused: the record tells
   * them it was a cancellation (`job/lease.ts`).
   */
  cancel (id: string): void {
    for (const attempt of this.#running) if (attempt.id === id) attempt.stop(new JobCancelledError())
  }

  async #deliver (message: JobMessage, delivery: Delivery, limits: DeliveryLimits, log: FastifyBaseLogger): Promise<Disposition> {
    if (this.#stopping.signal.aborted) return AGAIN
    const { store, clock } = this.#settings
    const owner = randomUUID()
    const now = clock.now()
    const leaseUntil = limits.deadline ?? now + this.#settings.leaseSeconds * 1000
    const claim = await store.claim(message.id, { owner, leaseUntil, now, messageDigest: messageDigest(messageJson(message)) })
    if (!claim.claimed) {
      if (claim.mismatch === true) {
        // Not the message the HTTP side queued for this job: someone else wrote to the queue.
        log.warn({ enqueuedAt: message.enqueuedAt }, 'message does not match its job as accepted: dropped, the job is left as it is')
        return ACK
      }
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
      // before its queue's last delivery (a delivery window longer than configured), or, while
      // its message is younger than any record lives, that the job is not in this store at all.
      if (record === undefined) log.warn({ enqueuedAt: message.enqueuedAt }, now - (message.enqueuedAt ?? 0) < message.resultTtlSeconds * 1000 ? UNKNOWN_JOB : 'job unknown or expired, message dropped')
      else log.debug({ status: record.status }, 'job not runnable, message dropped')
      return ACK
    }
    const job = this.#finishing(message, owner, { attempt: claim.attempt, startedAt: now }, { until: leaseUntil, renewed: limits.deadline === undefined }, delivery, log)
    return await this.#attempt(job, message.request ?? claim.request, limits)
  }

  /** The job as finishing it sees it: the claim, held through a lease on it and on this delivery. */
  #finishing (message: JobMessage, owner: string, run: { attempt: number, startedAt: number }, claim: { until: number, renewed: boolean }, delivery: Delivery, log: FastifyBaseLogger): Finishing {
    const lease = new Lease(message.id, owner, delivery, this.#settings, log, claim)
    return { message, owner, lease, ...run, receiveCount: delivery.receiveCount, log, stopping: this.#stopping.signal }
  }

  /** Runs one attempt this process holds the claim of, and stores its outcome. */
  async #attempt (job: Finishing, request: RequestSnapshot | undefined, limits: DeliveryLimits): Promise<Disposition> {
    const { message, log } = job
    const settings = this.#settings
    // Its end, whatever it is, removes the request's uploaded body.
    if (request?.upload !== undefined) job.upload = request.upload
    if (job.attempt > message.maxAttempts) {
      log.error({ attempts: job.attempt - 1 }, 'job failed: attempts exhausted')
      return await finish(settings, job, errorResponse(new AttemptsExhaustedError(message.maxAttempts)), JobOutcome.attemptsExhausted)
    }
    if (request === undefined) {
      log.error('job request missing from both message and store')
      return await finish(settings, job, errorResponse(new InvalidMessageError('request missing')), JobOutcome.invalid)
    }
    log.info({ attempt: job.attempt }, 'job attempt started')
    const progress = progressReporter(async progress => await settings.store.setProgress(message.id, job.owner, progress), log, settings.clock)
    const attempt = new Attempt(this.#app, settings.runs, settings.clock, {
      id: message.id,
      attempt: job.attempt,
      request,
      timeoutSeconds: message.timeoutSeconds,
      ...(limits.deadline === undefined ? {} : { deadline: limits.deadline }),
      lease: job.lease,
      progress: progress.report,
      log,
      queuedBy: message.requestId,
      // Without a results bucket nothing larger is ever kept: a longer body is cut as it streams.
      maxBodyBytes: settings.results === undefined ? MAX_RESPONSE_BYTES : undefined,
      openUpload: settings.results?.open?.bind(settings.results)
    })
    this.#running.add(attempt)
    if (this.#stopping.signal.aborted) attempt.stop(new WorkerStoppingError())
    try {
      const end = await attempt.run()
      // The handler's latest report lands before its result, and nothing after it; a stopped
      // attempt's (timeout, cancellation, shutdown) would be a write of a job that is over.
      await progress.settle(end.kind !== 'stopped')
      return await dispositionOf(end, job, settings, limits.deadline)
    } finally {
      this.#running.delete(attempt)
    }
  }
}
