import type { Headers, RequestSnapshot, StoredResponse } from '../core/wire.js'
import type { StoreStats } from './store.js'

/** Counted per entry on top of bodies and headers: the record, the maps, the objects. */
const ENTRY_OVERHEAD_BYTES = 512

/** Counted per idempotency key reservation: its digests, its job id and the map's entry. */
export const KEY_ENTRY_BYTES = 256

/**
 * The share of the budget that results nobody has read yet may hold for sure: beyond it they
 * give way when room is needed, so that a caller who asks for large results and never reads
 * them cannot take the memory that others' requests need.
 */
const UNREAD_SHARE = 0.5

/** An eviction: `remove` forgets a delivered result; `replace` turns an unread one into a small 410. */
export interface Evict {
  remove (id: string): void
  replace (id: string): void
}

/**
 * The memory store's byte budget: what each job's entry counts against `maxBytes`, and which
 * entries may be evicted to make room. First delivered results go, oldest delivery first; then
 * results nobody has read yet beyond half the budget, oldest first, the newest always kept
 * (their job then answers `410 RESULT_EVICTED`). A request waiting to run and a running job are
 * never evicted.
 */
export class MemoryBudget {
  readonly maxBytes: number
  /** Bytes of every entry, and of the delivered results among them (which may be evicted). */
  #bytes = 0
  #evictableBytes = 0
  /** Ids of delivered results with their bytes, oldest delivery first: the eviction order. */
  readonly #delivered = new Map<string, number>()
  /** Ids of results not read yet with their bytes, oldest first; their sum; the newest one. */
  readonly #unread = new Map<string, number>()
  #unreadBytes = 0
  #newestUnread: string | undefined
  #evictions = 0
  #unreadEvictions = 0
  expired = 0

  constructor (maxBytes: number) {
    this.maxBytes = maxBytes
  }

  /**
   * Bytes that cannot be evicted: all but delivered results and unread ones beyond the share (a
   * close estimate, never slower than a lookup: the store checks exactly when a job comes).
   */
  heldBytes (): number {
    const newest = this.#newestUnread === undefined ? 0 : this.#unread.get(this.#newestUnread) ?? 0
    const overShare = Math.max(0, Math.min(this.#unreadBytes - this.maxBytes * UNREAD_SHARE, this.#unreadBytes - newest))
    return this.#bytes - this.#evictableBytes - overShare
  }

  /** Whether `bytes` more fit once every delivered result has been evicted. */
  fits (bytes: number): boolean {
    return this.#bytes + bytes <= this.maxBytes
  }

  /** An entry of `bytes` joins; an entry that changed size counts `bytes - before` more. */
  add (bytes: number, before = 0): void {
    this.#bytes += bytes - before
  }

  /** The entry `id` now holds a result of `bytes` that nobody has read yet. */
  finished (id: string, bytes: number): void {
    this.#forget(id)
    this.#unread.set(id, bytes)
    this.#unreadBytes += bytes
    this.#newestUnread = id
  }

  /** The entry `id` of `bytes` was handed to a client: from now on it may be evicted for room. */
  delivered (id: string, bytes: number): void {
    // Delivered again: it moves to the back of the eviction order.
    this.#forget(id)
    this.#delivered.set(id, bytes)
    this.#evictableBytes += bytes
  }

  /** The entry `id` of `bytes` is gone (expired, deleted or evicted). */
  removed (id: string, bytes: number): void {
    this.#bytes -= bytes
    this.#forget(id)
  }

  /** Evicts until `bytes` more fit (or nothing more may go): delivered results, then unread ones over the share. */
  makeRoom (bytes: number, evict: Evict): void {
    for (const id of [...this.#delivered.keys()]) {
      if (this.fits(bytes)) return
      evict.remove(id)
      this.#evictions += 1
    }
    while (!this.fits(bytes)) {
      const oldest = this.#unread.keys().next().value
      if (oldest === undefined || oldest === this.#newestUnread || this.#unreadBytes <= this.maxBytes * UNREAD_SHARE) return
      evict.replace(oldest)
      // Its small 410 is unread still, but no longer in the share: it waits for its reader.
      this.#forget(oldest)
      this.#unreadEvictions += 1
    }
  }

  stats (storedJobs: number): StoreStats {
    return { storedJobs, storedBytes: this.#bytes, evictions: this.#evictions, unreadEvictions: this.#unreadEvictions, expired: this.expired }
  }

  /** `id` leaves the eviction orders (it is gone, or moves from one to the other). */
  #forget (id: string): void {
    const unread = this.#unread.get(id)
    if (unread !== undefined) {
      this.#unread.delete(id)
      this.#unreadBytes -= unread
    }
    const bytes = this.#delivered.get(id)
    if (bytes === undefined) return
    this.#delivered.delete(id)
    this.#evictableBytes -= bytes
  }
}

/** What a job's entry counts while it waits or runs: its request (when the store keeps it). */
export function requestEntryBytes (request: RequestSnapshot | undefined): number {
  return ENTRY_OVERHEAD_BYTES + (request === undefined ? 0 : request.url.length + headerBytes(request.headers) + (request.body?.length ?? 0))
}

/** What a done job's entry counts: its response. */
export function responseEntryBytes (response: StoredResponse): number {
  return ENTRY_OVERHEAD_BYTES + headerBytes(response.headers) + response.body.length
}

function headerBytes (headers: Headers): number {
  let bytes = 0
  for (const [name, value] of Object.entries(headers)) bytes += name.length + (Array.isArray(value) ? value.join('').length : value.length)
  return bytes
}
