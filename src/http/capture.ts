import { createHash, type Hash } from 'node:crypto'
import { pipeline, Transform } from 'node:stream'
import { finished } from 'node:stream/promises'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { newJobId } from '../core/job-id.js'
import type { UploadedBody } from '../core/wire.js'
import { BodyTooLargeError } from '../errors.js'
import { enqueueFailed } from '../job/acceptance.js'
import { isJobRun } from '../job/context.js'
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
  tee: Transform
}

const kCaptured = Symbol('fastify-long-running.captured')

/** Where request bodies over a threshold go, and who hears that a part's bytes left memory. */
export interface UploadSettings {
  bodies: ResultBodies | undefined
  /** Told of bytes no longer held (a part sent): see `BodyBudget.release`. */
  released: (request: FastifyRequest, bytes: number) => void
}

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
    const captured = { chunks: [], bytes: 0, id: newJobId(), state: 'receiving', decoded: payload !== request.raw, uploads: threshold !== undefined } as unknown as Captured
    const upload = (chunk: Buffer): Promise<void> | undefined => {
      if (threshold === undefined || bodies === undefined) return undefined
      if (captured.writer === undefined && captured.bytes + chunk.length <= threshold) return undefined
      return toBucket(captured, bodies, chunk, request, settings)
    }
    const tee = new Transform({
      // Never back-pressure the socket for the chunks kept: a parser may read `request.raw`
      // itself (multipart does) and leave this side unread. What waits here is the very buffers
      // kept in `captured`. Uploaded chunks wait for the bucket instead.
      readableHighWaterMark: 1024 ** 3,
      transform (chunk: Buffer, _encoding, callback) {
        const uploading = upload(chunk)
        if (uploading === undefined) {
          captured.chunks.push(chunk)
          captured.bytes += chunk.length
          return callback(null, chunk)
        }
        // A part S3 refused (after its retries): nothing half-stored is left when the client hears.
        uploading.then(() => callback(null, chunk), async (error: unknown) => {
          await captured.writer?.abort()
          callback(enqueueFailed(error))
        })
      },
      flush (callback) {
        const { writer, hash } = captured
        if (writer === undefined || hash === undefined) return callback()
        writer.end().then(bytes => {
          captured.upload = { key: writer.key, bytes, sha256: hash.digest('base64url') }
          callback()
        }, (error: unknown) => callback(enqueueFailed(error)))
      }
    })
    captured.tee = tee
    // Keeps the length check of an earlier decoding hook (e.g. decompression) working.
    Object.defineProperty(tee, 'receivedEncodedLength', { get: () => payload.receivedEncodedLength })
    ;(request as unknown as Record<symbol, Captured>)[kCaptured] = captured
    // A request that never becomes a job (refused, cut, or its client gone) leaves nothing in the bucket.
    reply.raw.once('close', () => { if (captured.state === 'receiving') void drop(captured) })
    pipeline(payload, tee, () => {})
    return tee
  }
}

/** Streams `chunk` (and, at the first, the bytes kept so far) to the bucket; resolves when it may go on. */
async function toBucket (captured: Captured, bodies: ResultBodies, chunk: Buffer, request: FastifyRequest, settings: UploadSettings): Promise<void> {
  let writer = captured.writer
  let hash = captured.hash as Hash
  const kept = captured.chunks
  if (writer === undefined) {
    const declared = Number(request.headers['content-length'])
    writer = (bodies.upload as NonNullable<ResultBodies['upload']>)(captured.id, Number.isSafeInteger(declared) ? declared : undefined)
    writer.onReleased = bytes => settings.released(request, bytes)
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
 * Reads whatever of the body the route's parser left unread (a multipart parser leaves the
 * stream to the handler, which on this side never runs), so that the job gets the whole body
 * and the client's upload is not held up by back-pressure. At most the route's `bodyLimit`,
 * but for a multipart body going to a bucket: the route's multipart limits decide then, in the
 * job's replay, as they would synchronously.
 */
export async function drainBody (request: FastifyRequest): Promise<void> {
  const captured = capturedOf(request)
  if (captured === undefined || captured.tee.readableEnded) return
  const multipart = (request as { isMultipart?: () => boolean }).isMultipart?.() === true
  const uploads = multipart && captured.uploads
  const limit = request.routeOptions.bodyLimit
  const { tee } = captured
  // The rest of the upload is never read: the connection closes after the 413, or the client
  // would go on sending into it and the server could never close (Fastify waits for it).
  tee.on('data', () => {
    if (!uploads && captured.bytes > limit) tee.destroy(Object.assign(new BodyTooLargeError(limit), { headers: { connection: 'close' } }))
  })
  tee.resume()
  await finished(tee)
}

/** Whether the request comes with a body (a length, chunks, or an HTTP/2 stream left open, RFC 9113 §8.1). */
export function hasBody (request: FastifyRequest): boolean {
  if (request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined) return true
  const stream = (request.raw as { stream?: { endAfterHeaders?: boolean } }).stream
  return stream !== undefined && stream.endAfterHeaders === false
}
