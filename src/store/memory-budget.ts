import type { Headers, RequestSnapshot, StoredResponse } from '../core/wire.js'
import type { StoreStats } from './store.js'

/** Counted per entry on top of bodies and headers: the record, the maps, the objects. */
const ENTRY_OVERHEAD_BYTES = 512

/**
 * The share of the budget that results nobody has read yet may hold for sure: beyond it they
 * give way when room is needed, so that a caller who asks for large results and never reads
 * them cannot take the memory that others' requests need.
 */
const UNREAD_SHARE = 0.5

/** An eviction: `remove` forgets an entry; `replace` turns an unread result into a small 410 and returns its bytes. */
export interface Evict {
  remove (id: string): void
  replace (id: string): number
}

/** About what a result's 410 in place of it counts (`responseEntryBytes` of `errorResponse`'s). */
const STUB_BYTES = 1024

/**
 * The memory store's byte budget: what each job's entry counts against `maxBytes`, and which
 * entries may be evicted to make room. First delivered results go, oldest delivery first; then
 * results nobody has read yet beyond half the budget, oldest first, the newest always kept
 * (their job then answers `410 RESULT_EVICTED`); last those 410s, oldest first (then `404`). A
 * request waiting to run and a running job are never evicted.
 */
export class MemoryBudget {
  readonly maxBytes: number
  /** Bytes of every entry, and of the delivered results among them (which may be evicted). */
  #bytes = 0
  #evictableBytes = 0
  /** Ids of delivered results with their bytes, oldest delivery first: the eviction order. */
  readonly #delivered = new Map<string, number>()
  /**
   * The 410s that took the place of unread results, oldest first: evicted last, after delivered
   * results and unread ones over the share. Each frees about a KiB: had they gone with delivered
   * results, one new job would take every 410 of a burst with it (404s to their late readers).
   */
  readonly #stubs = new Map<string, number>()
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
    return this.#bytes - this.#evictableBytes - this.#unreadOverShare()
  }

  /** Unread bytes beyond the share, the newest result apart: what unread results may give up. */
  #unreadOverShare (): number {
    // Cleared when its result leaves the unread ones: while set, it is among them.
    const newest = this.#newestUnread === undefined ? 0 : this.#unread.get(this.#newestUnread) as number
    return Math.max(0, Math.min(this.#unreadBytes - this.maxBytes * UNREAD_SHARE, this.#unreadBytes - newest))
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

  /**
   * Evicts until `bytes` more fit: delivered results, oldest delivery first, then unread ones
   * over the share, oldest first (each replaced by a small 410 that may go in turn, or removed
   * when it is no larger than that). Nothing is evicted for `bytes` that would not fit anyway.
   */
  makeRoom (bytes: number, evict: Evict): void {
    if (this.heldBytes() + bytes > this.maxBytes) return
    this.#evictFrom(this.#delivered, bytes, evict)
    while (!this.fits(bytes) && this.#unreadBytes > this.maxBytes * UNREAD_SHARE) {
      const [oldest, size] = this.#unread.entries().next().value as [string, number]
      if (oldest === this.#newestUnread) break
      this.#unreadEvictions += 1
      if (size <= STUB_BYTES) evict.remove(oldest)
      // Its 410 waits for its reader, and may itself go when room is needed again.
      else this.#stub(oldest, evict.replace(oldest))
    }
    // The 410s last, should their results not have made room enough.
    this.#evictFrom(this.#stubs, bytes, evict)
  }

  /** The unread result `id` is now its 410, of `bytes`. */
  #stub (id: string, bytes: number): void {
    this.#forget(id)
    this.#stubs.set(id, bytes)
    this.#evictableBytes += bytes
  }

  #evictFrom (entries: Map<string, number>, bytes: number, evict: Evict): void {
    for (const id of [...entries.keys()]) {
      if (this.fits(bytes)) return
      evict.remove(id)
      this.#evictions += 1
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
      if (id === this.#newestUnread) this.#newestUnread = undefined
    }
    const bytes = this.#delivered.get(id) ?? this.#stubs.get(id)
    if (bytes === undefined) return
    this.#delivered.delete(id)
    this.#stubs.delete(id)
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
