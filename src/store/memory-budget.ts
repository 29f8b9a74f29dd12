import type { Headers, RequestSnapshot, StoredResponse } from '../core/wire.js'
import type { StoreStats } from './store.js'

/** Counted per entry on top of bodies and headers: the record, the maps, the objects. */
const ENTRY_OVERHEAD_BYTES = 512

/**
 * The memory store's byte budget: what each job's entry counts against `maxBytes`, and which
 * entries may be evicted to make room. Only a delivered result may go, oldest delivery first:
 * a request waiting to run, a running job and a result nobody has read yet are never evicted.
 */
export class MemoryBudget {
  readonly maxBytes: number
  /** Bytes of every entry, and of the delivered results among them (which may be evicted). */
  #bytes = 0
  #evictableBytes = 0
  /** Ids of delivered results with their bytes, oldest delivery first: the eviction order. */
  readonly #delivered = new Map<string, number>()
  #evictions = 0
  expired = 0

  constructor (maxBytes: number) {
    this.maxBytes = maxBytes
  }

  /** Bytes that cannot be evicted. */
  heldBytes (): number {
    return this.#bytes - this.#evictableBytes
  }

  /** Whether `bytes` more fit once every delivered result has been evicted. */
  fits (bytes: number): boolean {
    return this.#bytes + bytes <= this.maxBytes
  }

  /** An entry of `bytes` joins; an entry that changed size counts `bytes - before` more. */
  add (bytes: number, before = 0): void {
    this.#bytes += bytes - before
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

  /** Evicts delivered results through `remove`, oldest delivery first, until `bytes` more fit (or none is left). */
  makeRoom (bytes: number, remove: (id: string) => void): void {
    for (const id of [...this.#delivered.keys()]) {
      if (this.fits(bytes)) return
      remove(id)
      this.#evictions += 1
    }
  }

  stats (storedJobs: number): StoreStats {
    return { storedJobs, storedBytes: this.#bytes, evictions: this.#evictions, expired: this.expired }
  }

  #forget (id: string): void {
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
