import { isExpired } from '../core/job-state.js'
import { StoreFullError } from '../errors.js'
import type { MemoryBudget } from './memory-budget.js'
import type { KeyReservation } from './store.js'

/** Counted per idempotency key reservation: its digests, its job id and the map's entry. */
const KEY_ENTRY_BYTES = 256

/**
 * The memory store's idempotency key reservations. Each counts against the budget, so that
 * the keys of refused requests cannot pile up unbounded; a key whose job never came to be is
 * released at once, so that the client's retry with it is a new request rather than a `422`.
 */
export class MemoryKeys {
  readonly #keys = new Map<string, KeyReservation>()
  readonly #budget: MemoryBudget
  readonly #makeRoom: (bytes: number) => void

  constructor (budget: MemoryBudget, makeRoom: (bytes: number) => void) {
    this.#budget = budget
    this.#makeRoom = makeRoom
  }

  /** See `JobStore.reserveKey`. */
  reserve (reservation: KeyReservation, now: number): KeyReservation {
    const held = this.#keys.get(reservation.key)
    if (held !== undefined && !isExpired(held, now)) return { ...held }
    if (held === undefined) {
      this.#makeRoom(KEY_ENTRY_BYTES)
      if (!this.#budget.fits(KEY_ENTRY_BYTES)) throw new StoreFullError(KEY_ENTRY_BYTES, this.#budget.maxBytes)
      this.#budget.add(KEY_ENTRY_BYTES)
    }
    this.#keys.set(reservation.key, { ...reservation })
    return { ...reservation }
  }

  /** Job `jobId` ended: the key that names it lives as long as its result, then the same key is a new request. */
  expireWith (key: string | undefined, jobId: string, expiresAt: number): void {
    const reservation = key === undefined ? undefined : this.#keys.get(key)
    if (reservation?.jobId === jobId) reservation.expiresAt = expiresAt
  }

  /** Frees `key` if it still names job `jobId`, which was never created or never queued. */
  release (key: string | undefined, jobId: string): void {
    if (key === undefined || this.#keys.get(key)?.jobId !== jobId) return
    this.#keys.delete(key)
    this.#budget.add(0, KEY_ENTRY_BYTES)
  }

  sweep (now: number): void {
    for (const [key, reservation] of this.#keys) if (isExpired(reservation, now)) this.release(key, reservation.jobId)
  }
}
