import { Transform } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Clock } from '../clock.js'
import { BodyTimeoutError, StoreFullError } from '../errors.js'
import { isJobRun } from '../job/context.js'
import { enqueueFailed } from '../job/acceptance.js'
import type { StoreMemory } from '../store/store.js'
import { hasBody, type Payload } from './snapshot.js'

const RECEIVING_COPIES = 2

/**
 * What receiving a long-running request's body may cost, in time and, with a store that keeps
 * everything in memory, in bytes.
 *
 * Time: the body must arrive within `bodyTimeoutSeconds`, or the request gets `408
 * BODY_TIMEOUT` and its connection is closed. Fastify sets no request timeout: without this, a
 * client sending a byte now and then would hold its socket and its bytes as long as it likes.
 *
 * Bytes: a body is counted as it arrives, twice (the raw bytes the job keeps and the route's
 * parsed body), until the job is in the store, which counts it from then on. A request whose
 * declared length could not fit is refused before its body is read; one whose bytes stop
 * fitting is refused as they arrive (503 `ENQUEUE_FAILED`, `Retry-After`). A refused body is
 * read to its end and discarded, so that the connection stays usable (a client still sending
 * gets the answer, where closing the connection would give it an EPIPE instead).
 */
export class BodyBudget {
  readonly #memory: StoreMemory | undefined
  readonly #clock: Clock
  readonly #timeoutSeconds: number
  #inFlightBytes = 0
  readonly #held = new WeakMap<FastifyRequest, number>()

  constructor (memory: StoreMemory | undefined, clock: Clock, timeoutSeconds: number) {
    this.#memory = memory
    this.#clock = clock
    this.#timeoutSeconds = timeoutSeconds
  }

  /** The `preParsing` hooks of long-running routes. */
  readonly preParsing = [async (request: FastifyRequest, reply: FastifyReply, payload: Payload): Promise<Payload> => this.#admit(request, reply, payload)]

  #admit (request: FastifyRequest, reply: FastifyReply, payload: Payload): Payload {
    if (isJobRun(request) || !hasBody(request)) return payload
    // Delivered results do not count: the store evicts them to make room.
    const declared = RECEIVING_COPIES * Number(request.headers['content-length'] ?? 0)
    if (!this.#fits(declared)) throw enqueueFailed(new StoreFullError(declared, this.#memory?.maxBytes ?? 0))
    this.#held.set(request, 0)
    reply.raw.once('close', () => this.forget(request))
    return this.#gate(request, reply, payload)
  }

  /** The body as it passes: counted chunk by chunk, and cut at the deadline. */
  #gate (request: FastifyRequest, reply: FastifyReply, payload: Payload): Payload {
    const gate = new Transform({
      transform: (chunk: Buffer, _encoding, callback) => {
        const bytes = RECEIVING_COPIES * chunk.length
        if (!this.#fits(bytes)) return callback(enqueueFailed(new StoreFullError(bytes, this.#memory?.maxBytes ?? 0)))
        this.#take(request, bytes)
        callback(null, chunk)
      }
    })
    const timer = this.#clock.setTimeout(() => {
      // HTTP/1.1: the connection closes after the answer, cutting the upload (HTTP/2 has no such header).
      if (request.raw.httpVersionMajor === 1) reply.header('connection', 'close')
      gate.destroy(new BodyTimeoutError(this.#timeoutSeconds))
    }, this.#timeoutSeconds * 1000)
    gate.once('close', () => {
      this.#clock.clearTimeout(timer)
      // Refused or cut: what the client still sends is read and thrown away.
      payload.unpipe(gate)
      payload.resume()
    })
    payload.once('error', (error: Error) => gate.destroy(error))
    // Keeps the length check of an earlier decoding hook (e.g. decompression) working.
    Object.defineProperty(gate, 'receivedEncodedLength', { get: () => payload.receivedEncodedLength })
    return payload.pipe(gate)
  }

  #fits (bytes: number): boolean {
    const memory = this.#memory
    return memory === undefined || memory.heldBytes() + this.#inFlightBytes + bytes <= memory.maxBytes
  }

  #take (request: FastifyRequest, bytes: number): void {
    if (this.#memory === undefined) return
    this.#inFlightBytes += bytes
    this.#held.set(request, (this.#held.get(request) ?? 0) + bytes)
  }

  /** The request's bytes are in the store now, or never will be. */
  forget (request: FastifyRequest): void {
    const bytes = this.#held.get(request)
    if (bytes === undefined) return
    this.#held.delete(request)
    this.#inFlightBytes -= bytes
  }
}
