import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import type { Delivery } from '../queue/queue.js'
import type { JobStore } from '../store/store.js'

/** What an attempt needs of its claim: to keep it while it runs, and to hear when it is lost. */
export interface KeptLease {
  /** Renews the claim every third of the lease until {@link KeptLease.stop}; `onLost` once it is someone else's. */
  keep (onLost: () => void): void
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
 */
export class Lease implements KeptLease {
  readonly #id: string
  readonly #owner: string
  readonly #delivery: Pick<Delivery, 'extend'>
  readonly #settings: LeaseSettings
  readonly #log: FastifyBaseLogger
  readonly #renewed: boolean
  #timer: unknown
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
  }

  keep (onLost: () => void): void {
    const { clock, leaseSeconds } = this.#settings
    this.#timer = clock.setTimeout(() => {
      this.#renew().then(held => {
        if (!held) onLost()
      }, (error: unknown) => this.#log.warn({ err: error }, 'lease renewal failed'))
      this.keep(onLost)
    }, leaseSeconds * 1000 / 3)
  }

  stop (): void {
    if (this.#timer !== undefined) this.#settings.clock.clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** Runs `work` with the claim kept meanwhile, where this lease is renewed at all. */
  async keeping<T> (work: () => Promise<T>): Promise<T> {
    // A lost claim needs no telling here: the work's own conditional write is refused.
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

  async #renew (): Promise<boolean> {
    const { store, clock, leaseSeconds } = this.#settings
    const until = clock.now() + leaseSeconds * 1000
    const held = await store.renew(this.#id, this.#owner, until)
    if (!held) {
      this.#lost = true
      return false
    }
    this.#until = until
    await this.#delivery.extend(Math.ceil(leaseSeconds))
    return true
  }
}
