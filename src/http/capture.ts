import { createHash, type Hash } from 'node:crypto'
import { pipeline, Transform } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { newJobId } from '../core/job-id.js'
import type { UploadedBody } from '../core/wire.js'
import { BodyTooLargeError } from '../errors.js'
import { enqueueFailed } from '../job/unqueued.js'
import { isJobRun } from '../job/context.js'
import { hasBody, isMultipart } from './body-kind.js'
import type { BodyWriter, ResultBodies } from '../results/results.js'

/** A request body stream as `preParsing` hooks see it. */
export type Payload = NodeJS.ReadableStream & { receivedEncodedLength?: number }

/**
 * A long-running request's body as the HTTP side keeps it for the job: its bytes, held, or past
 * the bodies bucket's threshold streamed there as they arrive (`writer`), hashed on the way.
 */
export interface Captured {
  chunks: Buffer[]
  bytes: number
  /** The id the job will have, named before its body is stored: the upload's key holds it. */
  id: string
  writer?: BodyWriter
  hash?: Hash
  /** The uploaded body, once the object exists. */
  upload?: UploadedBody
  /** Whether the upload now belongs to a job (whose end removes it), or to nobody yet. */
  state: 'receiving' | 'accepting' | 'adopted' | 'dropped'
  /** The bytes pulled through this side (a decoding hook before: the decoded ones). */
  decoded: boolean
  /** Whether a body past the threshold goes to a bucket. */
  uploads: boolean
  /** The most the kept copy may hold: the route's `bodyLimit`, but for a multipart body going to a bucket (unbounded here: multipart's own limits decide, in the replay). */
  limit: number
  /** Whether the body went past `limit`: no job can be made of what is kept. */
  overLimit: boolean
  tee: Transform
  /** Told of bytes of one copy no longer held: a part sent, or an uploaded chunk drained. */
  released: (bytes: number) => void
}

const kCaptured = Symbol('fastify-long-running.captured')

/** Where request bodies over a threshold go, and who hears that a part's bytes left memory. */
export interface UploadSettings {
  bodies: ResultBodies | undefined
  /**
   * Told of bytes of one of a body's two copies (the bytes kept for the job, the bytes the
   * route's parser reads) no longer held: a part sent to the bucket; an uploaded chunk read by
   * `drainBody` and thrown away. See `BodyBudget.release`.
   */
  released: (request: FastifyRequest, bytes: number) => void
}

/**
 * Set on the stream the plugin's first `preParsing` hook hands on when an earlier hook decoded
 * the body (request decompression): the bytes kept are then the decoded ones, and the replay
 * must not claim the client's encoding.
 */
export const kDecoded = Symbol('fastify-long-running.decoded')

/**
 * How far uploaded bytes passed on to the route's parser may run ahead of it. A raw-stream
 * parser hands the stream to the handler, which `drainBody` stands in for on this side: while
 * the route's hooks run, the client waits, rather than the body piling up here.
 */
const UPLOAD_READ_AHEAD_BYTES = 1024 * 1024

/**
 * The `preParsing` hook that keeps a copy of the body bytes exactly as received, whatever the
 * content type, while Fastify's own parser reads them as usual (limits included). With a bodies
 * bucket (`results` that take uploads), the bytes past its threshold are not kept but streamed
 * to the bucket, at the pace the bucket takes them (back-pressure reaches the client).
 */
export function captureBody (settings: UploadSettings): (request: FastifyRequest, reply: FastifyReply, payload: Payload) => Promise<Payload> {
  const { bodies } = settings
  const threshold = bodies?.upload === undefined ? undefined : bodies.uploadThresholdBytes
  return async (request, reply, payload) => {
    if (!hasBody(request) || isJobRun(request)) return payload
    const decoded = (payload as Payload & { [kDecoded]?: boolean })[kDecoded] === true
    const released = (bytes: number): void => settings.released(request, bytes)
    // @fastify/multipart reads `request.raw` itself (busboy), in the handler or earlier (its
    // `attachFieldsToBody`, a hook's `request.file()`), and never this side: uploaded chunks are
    // not passed on to it, so that nothing waits here for a reader that never comes.
    const multipart = threshold !== undefined && isMultipart(request)
    // What is kept never passes the route's `bodyLimit` (here and in `drainBody`), but for a
    // multipart body going to a bucket, which multipart's own limits bound in the replay.
    // (Inflated bytes, a gzip multipart body, count against it: one small request must not fill
    // the bucket; a synchronous multipart route cannot read them at all.)
    const limit = multipart && !decoded ? Infinity : request.routeOptions.bodyLimit
    const captured = { chunks: [], bytes: 0, id: newJobId(), state: 'receiving', decoded, uploads: threshold !== undefined, limit, overLimit: false, released } as unknown as Captured
    const refuse = (error: Error): void => { if (!reply.sent) reply.send(error) }
    const tee = teeOf(captured, bodies, threshold, multipart, { refuse, http1: request.raw.httpVersionMajor === 1 })
    captured.tee = tee
    // Keeps the length check of an earlier decoding hook (e.g. decompression) working.
    Object.defineProperty(tee, 'receivedEncodedLength', { get: () => payload.receivedEncodedLength })
    ;(request as unknown as Record<symbol, Captured>)[kCaptured] = captured
    // A body cut short (its client gone, a 408) is no job's: its upload goes at once. A whole
    // body stays until the request is answered (`settleUpload`): a client gone while hooks run
    // does not stop the job, as it would not without a bucket.
    reply.raw.once('close', () => { if (captured.state === 'receiving' && !request.raw.complete) void drop(captured) })
    pipeline(payload, tee, () => {})
    return tee
  }
}

/**
 * The stream the route's parser reads: every chunk as it passes, the first `threshold` bytes
 * kept in `captured`, the rest (with a bucket) streamed there, at the pace the bucket takes them.
 */
function teeOf (captured: Captured, bodies: ResultBodies | undefined, threshold: number | undefined, multipart: boolean, bound: Bound): Transform {
  const upload = (chunk: Buffer): Promise<void> | undefined => {
    if (threshold === undefined || bodies === undefined) return undefined
    if (captured.writer === undefined && captured.bytes + chunk.length <= threshold) return undefined
    return toBucket(captured, bodies, chunk)
  }
  const tee = new Transform({
    // Never back-pressure the socket for the chunks kept: a parser may leave this side unread
    // until the handler (multipart does), and what waits here is the very buffers kept in
    // `captured`, no more than the route's `bodyLimit`. Uploaded chunks are held by nobody
    // else: they wait for a reader.
    readableHighWaterMark: threshold === undefined || multipart ? 1024 ** 3 : threshold + UPLOAD_READ_AHEAD_BYTES,
    transform (chunk: Buffer, _encoding, callback) {
      // Answered without becoming a job: what still arrives is read and thrown away.
      if (captured.state === 'dropped') return callback()
      const uploading = upload(chunk)
      if (uploading === undefined && (captured.overLimit || captured.bytes + chunk.length > captured.limit)) return pastLimit(captured, tee, bound, chunk, callback)
      if (uploading === undefined) {
        captured.chunks.push(chunk)
        captured.bytes += chunk.length
        return callback(null, chunk)
      }
      // A part S3 refused (after its retries): nothing half-stored is left when the client hears.
      uploading.then(() => {
        if (!multipart) return callback(null, chunk)
        captured.released(chunk.length)
        callback()
      }, async (error: unknown) => {
        await captured.writer?.abort()
        callback(enqueueFailed(error))
      })
    },
    flush (callback) {
      const { writer, hash } = captured
      if (writer === undefined || hash === undefined) return callback()
      writer.end().then(bytes => {
        captured.upload = { key: writer.key, bytes, sha256: hash.digest('base64url'), ...(writer.etag === undefined ? {} : { etag: writer.etag }) }
        callback()
      }, (error: unknown) => callback(enqueueFailed(error)))
    }
  })
  return tee
}

/** How to answer a request whose body goes past its kept copy's limit. */
interface Bound { refuse: (error: Error) => void, http1: boolean }

/**
 * A chunk past the route's `bodyLimit`: nothing more is kept. A parser reading the body (Fastify's
 * own, JSON say) is handed it, and refuses with its own `413 FST_ERR_CTP_BODY_TOO_LARGE` as it would
 * synchronously (or, its own limit higher, reads on: `drainBody` refuses then). A body nobody
 * reads yet (a raw stream, multipart, while the route's hooks run) is refused at once: the stream
 * fails (the rest of the body is read and thrown away) and the client gets its 413 now.
 */
function pastLimit (captured: Captured, tee: Transform, bound: Bound, chunk: Buffer, callback: (error?: Error | null, chunk?: Buffer) => void): void {
  captured.overLimit = true
  captured.chunks = []
  if (tee.listenerCount('data') + tee.listenerCount('readable') > 0) return callback(null, chunk)
  const error = tooLarge(captured.limit, bound.http1)
  callback(error)
  bound.refuse(error)
}

/**
 * The 413 of a body past the route's `bodyLimit`, after which an HTTP/1.1 connection closes: the
 * rest is never read. (HTTP/2 has no such header: the stream is reset once answered, body-budget.ts.)
 */
export function tooLarge (limit: number, http1: boolean): Error {
  return Object.assign(new BodyTooLargeError(limit), http1 ? { headers: { connection: 'close' } } : {})
}

/** Streams `chunk` (and, at the first, the bytes kept so far) to the bucket; resolves when it may go on. */
async function toBucket (captured: Captured, bodies: ResultBodies, chunk: Buffer): Promise<void> {
  let writer = captured.writer
  let hash = captured.hash as Hash
  const kept = captured.chunks
  if (writer === undefined) {
    writer = (bodies.upload as NonNullable<ResultBodies['upload']>)(captured.id)
    writer.onReleased = captured.released
    hash = createHash('sha256')
    captured.writer = writer
    captured.hash = hash
    captured.chunks = []
  }
  for (const piece of [...kept, chunk]) {
    hash.update(piece)
    captured.bytes += piece.length
    await writer.write(piece)
  }
  // The kept chunks were counted already.
  captured.bytes -= kept.reduce((sum, piece) => sum + piece.length, 0)
}

async function drop (captured: Captured): Promise<void> {
  captured.state = 'dropped'
  await captured.writer?.abort()
}

/** What the HTTP side kept of `request`'s body, if it kept anything. */
export function capturedOf (request: FastifyRequest): Captured | undefined {
  return (request as unknown as Record<symbol, Captured | undefined>)[kCaptured]
}

/**
 * Accepting the request as a job begins (its upload must then outlive the request: a client
 * that goes away meanwhile does not take it along), or has ended, `adopted` by a job or not.
 */
export async function acceptingUpload (request: FastifyRequest, adopted?: boolean): Promise<void> {
  const captured = capturedOf(request)
  if (captured === undefined || captured.state === 'dropped') return
  if (adopted === undefined) captured.state = 'accepting'
  else if (adopted) captured.state = 'adopted'
  // Removed before the client hears that its request is no job (422, 503, or another's job).
  else await drop(captured)
}

/**
 * The `onSend` hook of long-running routes: a request answered without becoming a job (a hook's
 * 401, a schema's 400, a parser's 413, a failed `drainBody`) has its upload removed before the
 * answer goes out, whether or not its client is still there.
 */
export async function settleUpload<T> (request: FastifyRequest, _reply: FastifyReply, payload: T): Promise<T> {
  const captured = capturedOf(request)
  if (captured?.state === 'receiving') await drop(captured)
  return payload
}
