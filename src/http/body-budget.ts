import { constants as http2, type Http2ServerRequest } from 'node:http2'
import { Transform } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Clock } from '../clock.js'
import { BodyTimeoutError, StoreFullError } from '../errors.js'
import { isJobRun } from '../job/context.js'
import { enqueueFailed } from '../job/unqueued.js'
import type { ResultBodies } from '../results/results.js'
import type { StoreMemory } from '../store/store.js'
import { hasBody } from './body-kind.js'
import { captureBody, kDecoded, type Payload } from './capture.js'

const RECEIVING_COPIES = 2
/** After the deadline, how long a parser that reads the socket itself (multipart) has to let the 408 out. */
const CUT_GRACE_MS = 1000

/**
 * What receiving a long-running request's body may cost, in time and, with a store that keeps
 * everything in memory, in bytes.
 *
 * Time: the body must arrive within `bodyTimeoutSeconds`, or the request gets `408
 * BODY_TIMEOUT` and its connection is closed (on HTTP/1.1). Fastify sets no request
 * timeout: without this, a client sending a byte now and then would hold its socket and its
 * bytes as long as it likes, refused or not.
 *
 * Bytes: a body is counted as it arrives, twice (the raw bytes the job keeps and the route's
 * parsed body), until the job is in the store, which counts it from then on. A request whose
 * declared length could not fit is refused before its body is read; one whose bytes stop
 * fitting is refused as they arrive (503 `ENQUEUE_FAILED`, `Retry-After`). Once the request is
 * answered (accepted, or refused by Fastify: 413, 415), its bytes no longer count and nothing
 * more of its body is kept. A body streamed to a bodies bucket (`results` that take uploads)
 * counts only while its bytes are in memory: each copy until it is gone (the kept bytes: until
 * their part is sent; the parser's: until `drainBody` throws them away, or, for a parser that
 * keeps the body whole, such as JSON, until the job is in the store).
 */
export class BodyBudget {
  readonly #memory: StoreMemory | undefined
  readonly #clock: Clock
  readonly #timeoutSeconds: number
  #inFlightBytes = 0
  readonly #held = new WeakMap<FastifyRequest, number>()
  /** The most bytes of one body held at once when it goes to a bucket: up to the threshold, then two parts. */
  readonly #uploadHeldBytes: number

  constructor (memory: StoreMemory | undefined, clock: Clock, timeoutSeconds: number, bodies?: ResultBodies) {
    this.#memory = memory
    this.#clock = clock
    this.#timeoutSeconds = timeoutSeconds
    const threshold = bodies?.upload === undefined ? undefined : bodies.uploadThresholdBytes
    this.#uploadHeldBytes = threshold === undefined ? Infinity : threshold + (bodies?.uploadBufferBytes ?? 0)
    const capture = captureBody({ bodies, released: (request, bytes) => this.release(request, bytes) })
    this.preParsing = [async (request: FastifyRequest, reply: FastifyReply, payload: Payload): Promise<Payload> => this.#admit(request, reply, payload), capture]
  }

  /** The `preParsing` hooks of long-running routes: admission, then the body's capture. */
  readonly preParsing: Array<(request: FastifyRequest, reply: FastifyReply, payload: Payload) => Promise<Payload>>

  #admit (request: FastifyRequest, reply: FastifyReply, payload: Payload): Payload {
    if (isJobRun(request) || !hasBody(request)) return payload
    const gate = this.#gate(request, payload)
    this.#deadline(request, reply, gate)
    reply.raw.once('close', () => {
      this.forget(request)
      gate.destroy()
    })
    endStreamWhenAnswered(request)
    // Delivered results do not count: the store evicts them to make room.
    const declared = RECEIVING_COPIES * Math.min(Number(request.headers['content-length'] ?? 0), this.#uploadHeldBytes)
    if (!this.#fits(declared)) throw this.#full(declared)
    this.#held.set(request, 0)
    // A decoding hook marks its stream with the encoded length, as Fastify's limit check asks.
    if (payload !== request.raw && typeof payload.receivedEncodedLength === 'number') Object.defineProperty(gate, kDecoded, { value: true })
    return payload.pipe(gate)
  }

  /** The body as it passes: counted chunk by chunk while the request is let in. */
  #gate (request: FastifyRequest, payload: Payload): Transform {
    const gate = new Transform({
      transform: (chunk: Buffer, _encoding, callback) => {
        const bytes = RECEIVING_COPIES * chunk.length
        if (!this.#fits(bytes)) return callback(this.#full(bytes))
        this.#take(request, bytes)
        callback(null, chunk)
      }
    })
    gate.once('close', () => {
      payload.unpipe(gate)
      // Refused or cut: what the client still sends is read and thrown away. (A decoded stream
      // is left alone: inflating the rest would only cost CPU. Its connection closes instead.)
      if (payload === request.raw) payload.resume()
    })
    payload.once('error', (error: Error) => gate.destroy(error))
    // Keeps the length check of an earlier decoding hook (e.g. decompression) working.
    Object.defineProperty(gate, 'receivedEncodedLength', { get: () => payload.receivedEncodedLength })
    return gate
  }

  /**
   * The body's deadline, from its first hook on, answered or not: a 408 while the request is
   * unanswered (the connection closes after it), then the connection cut if that answer cannot
   * go out (a parser that reads the socket itself), or at once if the request was answered
   * already (refused before its body was read, and the client still sending).
   */
  #deadline (request: FastifyRequest, reply: FastifyReply, gate: Transform): void {
    const timer = this.#clock.setTimeout(() => {
      if (reply.sent) return request.raw.destroy()
      if (request.raw.httpVersionMajor === 1) reply.header('connection', 'close')
      gate.destroy(new BodyTimeoutError(this.#timeoutSeconds))
      const grace = this.#clock.setTimeout(() => { if (!reply.sent) request.raw.destroy() }, CUT_GRACE_MS)
      reply.raw.once('close', () => this.#clock.clearTimeout(grace))
    }, this.#timeoutSeconds * 1000)
    // The system clock's timer must not keep the process alive (a closed app, a test's end).
    ;(timer as { unref?: () => void } | undefined)?.unref?.()
    const done = (): void => this.#clock.clearTimeout(timer)
    request.raw.once('end', done)
    request.raw.once('close', done)
    reply.raw.once('close', () => { if (request.raw.complete) done() })
  }

  #fits (bytes: number): boolean {
    const memory = this.#memory
    return memory === undefined || memory.heldBytes() + this.#inFlightBytes + bytes <= memory.maxBytes
  }

  /** The 503 of `bytes` that do not fit (only a budget refuses). */
  #full (bytes: number): Error {
    return enqueueFailed(new StoreFullError(bytes, (this.#memory as StoreMemory).maxBytes))
  }

  /** Counts `bytes` more for `request`, while it is let in and unanswered. */
  #take (request: FastifyRequest, bytes: number): void {
    const held = this.#held.get(request)
    if (this.#memory === undefined || held === undefined) return
    this.#inFlightBytes += bytes
    this.#held.set(request, held + bytes)
  }

  /** `bytes` of the request's no longer held in memory (a part of its upload was sent). */
  release (request: FastifyRequest, bytes: number): void {
    const held = this.#held.get(request)
    if (held === undefined) return
    const released = Math.min(held, bytes)
    this.#inFlightBytes -= released
    this.#held.set(request, held - released)
  }

  /** The request's bytes are in the store now, or never will be. */
  forget (request: FastifyRequest): void {
    const bytes = this.#held.get(request)
    if (bytes === undefined) return
    this.#held.delete(request)
    this.#inFlightBytes -= bytes
  }
}

/**
 * HTTP/2: a response's 'finish' and 'close' both wait for the client's half of the stream, which
 * a client answered mid-body (refused by a hook, 413, 408) may keep open and go on sending on,
 * its body and its budget held meanwhile. So once the answer is out, a body not received whole is
 * cut with RST_STREAM NO_ERROR, as RFC 9113 §8.1 lets a server do after a complete response (and
 * as Node does itself for a body nobody read). HTTP/1.1 closes the connection instead.
 */
function endStreamWhenAnswered (request: FastifyRequest): void {
  const { stream } = request.raw as { stream?: Http2ServerRequest['stream'] }
  stream?.once('finish', () => { if (!request.raw.complete) stream.close(http2.NGHTTP2_NO_ERROR) })
}
