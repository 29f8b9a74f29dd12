import type { FastifyReply, FastifyRequest } from 'fastify'
import { StoreFullError } from '../errors.js'
import { isJobRun } from '../job/context.js'
import { enqueueFailed } from '../job/acceptance.js'
import type { StoreMemory } from '../store/store.js'
import type { Payload } from './snapshot.js'

const RECEIVING_COPIES = 2

/**
 * The memory budget's gate on the HTTP side: a long-running request whose body the memory store
 * could not keep is refused (503 `ENQUEUE_FAILED`, `Retry-After`) before its body is read, so
 * that a burst of uploads is answered at once instead of being buffered first. Bytes let in but
 * not yet in the store (the body arriving, the job being created) are held here meanwhile.
 * Stores without a budget (DynamoDB) get no hook at all.
 */
export class BodyBudget {
  #inFlightBytes = 0
  readonly #held = new WeakMap<FastifyRequest, number>()

  constructor (memory: StoreMemory | undefined) {
    this.preParsing = memory === undefined ? [] : [async (request, reply, payload) => await this.#admit(memory, request, reply, payload)]
  }

  /** The `preParsing` hooks of long-running routes: none for a store without a budget. */
  readonly preParsing: Array<(request: FastifyRequest, reply: FastifyReply, payload: Payload) => Promise<Payload>>

  async #admit (memory: StoreMemory, request: FastifyRequest, reply: FastifyReply, payload: Payload): Promise<Payload> {
    if (isJobRun(request)) return payload
    // Receiving a body holds it twice until the job is stored: the raw bytes the job keeps and
    // the route's parsed body. A chunked body (no length) is counted when the store takes the
    // job, which checks again.
    const bytes = RECEIVING_COPIES * Number(request.headers['content-length'] ?? 0)
    // Delivered results do not count: the store evicts them to make room. A refused body is
    // never read: Node discards it, and the connection stays usable (a client still sending
    // gets the 503, where closing the connection would give it an EPIPE instead).
    if (memory.heldBytes() + this.#inFlightBytes + bytes > memory.maxBytes) throw enqueueFailed(new StoreFullError(bytes, memory.maxBytes))
    this.#inFlightBytes += bytes
    this.#held.set(request, bytes)
    reply.raw.once('close', () => this.forget(request))
    return payload
  }

  /** The request's bytes are in the store now, or never will be. */
  forget (request: FastifyRequest): void {
    const bytes = this.#held.get(request)
    if (bytes === undefined) return
    this.#held.delete(request)
    this.#inFlightBytes -= bytes
  }
}
