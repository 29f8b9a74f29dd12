import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import { JobCancelledError, LeaseLostError } from '../errors.js'
import { JobStatus } from '../core/job-state.js'
import { storedError } from '../core/error-response.js'
import type { Delivery } from '../queue/queue.js'
import { heldWriteBackoff, type Backoff } from '../retry.js'
import type { JobStore } from '../store/store.js'

/** What an attempt needs of its claim: to keep it while it runs, and to hear when it is lost. */
export interface KeptLease {
  /**
   * Renews the claim every third of the lease until {@link KeptLease.stop}, a failed renewal
   * tried again after a short back-off (at most a tenth of the lease); `onLost` once the claim is lost, with the reason: the job was
   * cancelled (`JobCancelledError`), or taken over, or its lease lapsed with no renewal getting
   * through (`LeaseLostError`).
   */
  keep (onLost: (reason: Error) => void): void
  /** Stops renewing; the claim then lapses by itself unless the job is finished or ended first. */
  stop (): void
}

/** What a {@link Lease} needs, resolved once at registration. */
export interface LeaseSettings {
  store: JobStore
  leaseSeconds: number
  clock: Clock
}

/**
 * A worker's claim on job `id` (held as `owner`), and the delivery that brought it: renewing one
 * extends the other, so that neither the store nor the queue hands the job to a second worker
 * while this one runs it. Kept out of the code that runs the job, as BullMQ's lock manager is.
 *
 * Once the last lease granted lapses with no renewal through, another worker may claim the job:
 * the claim is then lost here too, at that moment, whether the store refused the renewals or
 * could not be reached, so that the job never runs in two places at once.
 */
export class Lease implements KeptLease {
  readonly #id: string
  readonly #owner: string
  readonly #delivery: Pick<Delivery, 'extend'>
  readonly #settings: LeaseSettings
  readonly #log: FastifyBaseLogger
  readonly #renewed: boolean
  /** Between failed renewals: a few hundred ms, growing, at most a tenth of the lease. */
  readonly #retry: Backoff
  /** The next renewal, and the moment the claim lapses unless one gets through before. */
  #renewal: unknown
  #lapse: unknown
  /** Bumped by every keep and stop: a renewal answered since belongs to a keeping that is over. */
  #keeping = 0
  /** Until when the claim holds as far as this worker knows: the claim's lease, then each renewal's. */
  #until: number
  #lost = false

  /**
   * `claim.until` is the lease the claim was taken with; `claim.renewed` is false where nothing
   * renews it (a Lambda's claim lasts until its deadline).
   */
  constructor (id: string, owner: string, delivery: Pick<Delivery, 'extend'>, settings: LeaseSettings, log: FastifyBaseLogger, claim: { until: number, renewed: boolean }) {
    this.#id = id
    this.#owner = owner
    this.#delivery = delivery
    this.#settings = settings
    this.#log = log
    this.#until = claim.until
    this.#renewed = claim.renewed
    this.#retry = heldWriteBackoff(settings.leaseSeconds)
  }

  keep (onLost: (reason: Error) => void): void {
    this.stop()
    if (this.#lost) return onLost(new LeaseLostError())
    const keeping = this.#keeping
    const lost = (reason: Error): void => {
      if (keeping !== this.#keeping) return
      this.stop()
      this.#lost = true
      onLost(reason)
    }
    this.#armLapse(lost)
    this.#renewIn(this.#settings.leaseSeconds * 1000 / 3, 0, keeping, lost)
  }

  stop (): void {
    const { clock } = this.#settings
    this.#keeping += 1
    if (this.#renewal !== undefined) clock.clearTimeout(this.#renewal)
    if (this.#lapse !== undefined) clock.clearTimeout(this.#lapse)
    this.#renewal = this.#lapse = undefined
  }

  /** Runs `work` with the claim kept meanwhile, where this lease is renewed at all. */
  async keeping<T> (work: () => Promise<T>): Promise<T> {
    // A lost claim needs no telling here: the work's own conditional write is refused, and its
    // tries end once `holds` says the claim is gone (finish.ts).
    if (this.#renewed) this.keep(() => {})
    try {
      return await work()
    } finally {
      this.stop()
    }
  }

  /**
   * Whether the claim still holds at `now` as far as this worker knows: no renewal was refused,
   * and the last lease granted has not lapsed. The store's conditional writes decide who owns
   * the job; this only tells whether trying on is worth it.
   */
  holds (now: number): boolean {
    return !this.#lost && now < this.#until
  }

  /** Gives the claim back at once, so that the next delivery can take over without waiting for it. */
  async end (): Promise<void> {
    this.stop()
    this.#lost = true
    await this.#settings.store.renew(this.#id, this.#owner, 0).catch(() => {})
  }

  /**
   * The claim is lost when its lease lapses, on this worker's clock, with no renewal through:
   * from then on another worker's claim succeeds. A renewal still waiting for its answer then
   * does not count, even if it gets through later.
   */
  #armLapse (lost: (reason: Error) => void): void {
    const { clock } = this.#settings
    if (this.#lapse !== undefined) clock.clearTimeout(this.#lapse)
    this.#lapse = clock.setTimeout(() => this.#lapsed(lost), Math.max(0, this.#until - clock.now()))
  }

  #lapsed (lost: (reason: Error) => void): void {
    this.#log.warn({ leaseUntil: this.#until }, 'lease lapsed with no renewal through: the claim is given up, another worker may take the job')
    lost(new LeaseLostError())
  }

  /**
   * Renews after `ms`, then a third of a lease after each renewal. One renewal at a time: a
   * failed one (the store unreachable, or refusing writes for want of memory) is tried again after the
   * back-off, however many failed before, until one gets through or the lease lapses.
   */
  #renewIn (ms: number, failures: number, keeping: number, lost: (reason: Error) => void): void {
    this.#renewal = this.#settings.clock.setTimeout(() => {
      this.#renewal = undefined
      this.#renew().then(async held => {
        if (keeping !== this.#keeping) return
        if (!held) return lost(await this.#refusal())
        this.#armLapse(lost)
        this.#renewIn(this.#settings.leaseSeconds * 1000 / 3, 0, keeping, lost)
      }, (error: unknown) => {
        if (keeping !== this.#keeping) return
        // Past the lapse already (its timer not yet run, the event loop busy): no try would count.
        if (!this.holds(this.#settings.clock.now())) return this.#lapsed(lost)
        this.#log.warn({ err: error, failures: failures + 1 }, 'lease renewal failed, trying again')
        this.#renewIn(this.#retry.delayMs(failures + 1), failures + 1, keeping, lost)
      })
    }, ms)
  }

  /** Whether the claim is held: true once renewed, false when refused; rejects when the store failed. */
  async #renew (): Promise<boolean> {
    const { store, clock, leaseSeconds } = this.#settings
    const until = clock.now() + leaseSeconds * 1000
    const held = await store.renew(this.#id, this.#owner, until)
    if (!held) return false
    this.#until = until
    // The claim is what keeps the job here: a message shown again meanwhile finds it held, and
    // goes back. The next renewal extends the message again.
    await this.#delivery.extend(Math.ceil(leaseSeconds)).catch((error: unknown) => this.#log.warn({ err: error }, 'extending the job message\'s visibility failed'))
    return true
  }

  /**
   * Why the store refused a renewal: the job's record says whether it was cancelled (from any
   * process) or taken over by another worker. A record that cannot be read tells nothing more.
   */
  async #refusal (): Promise<Error> {
    const record = await this.#settings.store.get(this.#id).catch(() => undefined)
    const cancelled = record?.status === JobStatus.done && record.response !== undefined && storedError(record.response)?.code === 'FST_LONG_RUNNING_JOB_CANCELLED'
    return cancelled ? new JobCancelledError() : new LeaseLostError()
  }
}
