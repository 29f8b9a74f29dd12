import type { Headers } from '../core/wire.js'
import { TRAVELLING_HEADERS, type BodyWriter } from './results.js'

/** What an upload needs of its S3Results: the object, the part size, and its requests. */
export interface UploadTarget {
  bucket: string
  key: string
  partBytes: number
  /** Sends one command (`kind` names its class), tried again on its own like every request of an upload. */
  send: (kind: UploadCommand, input: Record<string, unknown>) => Promise<any>
}

export type UploadCommand = 'PutObject' | 'CreateMultipartUpload' | 'UploadPart' | 'CompleteMultipartUpload' | 'AbortMultipartUpload' | 'DeleteObject'

// S3's multipart limits (Amazon S3 User Guide, "Amazon S3 multipart upload limits"): parts of at
// least 5 MiB but the last, part numbers 1 to 10,000.
export const MAX_PARTS = 10_000
/** Parts per size step of a body of unknown length: 1,000 parts, then twice the size, and so on. */
const PARTS_PER_STEP = 1000

/**
 * A request body streamed to S3 as it arrives: a multipart upload whose parts are sent as they
 * fill, one in flight while the next fills, so that at most two parts are held at once. A body
 * that ends within one part is a single `PutObject`. Parts start at S3's smallest size and
 * double every 1,000, so 10,000 parts take any object S3 can hold, and what an upload holds
 * grows only with the bytes that really arrived: never with the length a client declares
 * (a `Content-Length` of a terabyte must not make the first part 100 MiB).
 */
export class S3BodyWriter implements BodyWriter {
  readonly key: string
  /** The object's ETag, once `end` made it. */
  etag: string | undefined
  onReleased?: (bytes: number) => void
  readonly #target: UploadTarget
  #partBytes: number
  #pending: Buffer[] = []
  #pendingBytes = 0
  #bytes = 0
  #uploadId: Promise<string> | undefined
  readonly #parts: Array<{ ETag: string, PartNumber: number }> = []
  #partNumber = 0
  #inFlight: Promise<void> | undefined
  /** The two part buffers (see `#take`), and how many parts were taken. */
  readonly #buffers: Array<Buffer | undefined> = []
  #taken = 0
  #failure: unknown
  #state: 'open' | 'ended' | 'aborted' = 'open'
  /** `end`'s work, once it began: an abort waits for it, or its object could appear after the delete. */
  #ending: Promise<unknown> | undefined

  constructor (target: UploadTarget) {
    this.#target = target
    this.key = target.key
    this.#partBytes = target.partBytes
  }

  async write (chunk: Buffer): Promise<void> {
    this.#check()
    this.#pending.push(chunk)
    this.#pendingBytes += chunk.length
    this.#bytes += chunk.length
    while (this.#pendingBytes >= this.#partBytes) await this.#sendPart(this.#take(this.#partBytes))
  }

  async end (): Promise<number> {
    this.#check()
    this.#state = 'ended'
    const ending = this.#end()
    this.#ending = ending.catch(() => {})
    try {
      return await ending
    } finally {
      // The object exists, or never will: the part buffers are garbage now, not the request's
      // to keep while it waits for its job (10 MiB each).
      this.#release()
    }
  }

  async #end (): Promise<number> {
    try {
      if (this.#uploadId === undefined) {
        const { ETag } = await this.#target.send('PutObject', { Bucket: this.#target.bucket, Key: this.key, Body: this.#take(this.#pendingBytes) }) as { ETag?: string }
        this.etag = ETag
        return this.#bytes
      }
      if (this.#pendingBytes > 0) await this.#sendPart(this.#take(this.#pendingBytes))
      await this.#inFlight
      if (this.#failure !== undefined) throw this.#failure
      const parts = [...this.#parts].sort((a, b) => a.PartNumber - b.PartNumber)
      const { ETag } = await this.#target.send('CompleteMultipartUpload', { Bucket: this.#target.bucket, Key: this.key, UploadId: await this.#uploadId, MultipartUpload: { Parts: parts } }) as { ETag?: string }
      this.etag = ETag
      return this.#bytes
    } catch (error) {
      await this.#giveUp()
      throw error
    }
  }

  async abort (): Promise<void> {
    if (this.#state === 'aborted') return
    const ended = this.#state === 'ended'
    this.#state = 'aborted'
    this.#pending = []
    this.#pendingBytes = 0
    await this.#ending
    await this.#giveUp()
    this.#release()
    // An object made already (end resolved) goes too: the request never became a job.
    if (ended) await this.#target.send('DeleteObject', { Bucket: this.#target.bucket, Key: this.key }).catch(() => {})
  }

  #release (): void {
    this.#buffers.length = 0
    this.#pending = []
    this.#pendingBytes = 0
  }

  #check (): void {
    if (this.#failure !== undefined) throw this.#failure
    if (this.#state !== 'open') throw new Error(`upload ${this.#state}`)
  }

  /** Parts of an upload never completed are billed until aborted (the lifecycle rule is the backstop). */
  async #giveUp (): Promise<void> {
    // A part that was waiting for the one before it does not start once aborted (`#sendPart`);
    // one that started meanwhile is waited for too: S3 may keep a part that lands after the abort.
    for (let inFlight = this.#inFlight; ; inFlight = this.#inFlight) {
      await inFlight
      if (inFlight === this.#inFlight) break
    }
    const uploadId = await this.#uploadId?.catch(() => undefined)
    if (uploadId !== undefined) await this.#target.send('AbortMultipartUpload', { Bucket: this.#target.bucket, Key: this.key, UploadId: uploadId }).catch(() => {})
  }

  /**
   * The first `bytes` pending bytes, copied into one of two buffers used in turn: the part
   * taken now goes where the part before the one in flight was, which is sent by then (a part
   * starts only once the one before it is sent). So an upload holds two parts' worth of memory
   * from start to end, and leaves no 5 MiB of garbage per part for the collector to catch up with.
   */
  #take (bytes: number): Buffer {
    const turn = this.#taken++ % 2
    let buffer = this.#buffers[turn]
    if (buffer === undefined || buffer.length < bytes) {
      buffer = Buffer.allocUnsafe(bytes)
      this.#buffers[turn] = buffer
    }
    let size = 0
    while (size < bytes) {
      const chunk = this.#pending[0] as Buffer
      const piece = chunk.subarray(0, bytes - size)
      piece.copy(buffer, size)
      size += piece.length
      if (piece.length === chunk.length) this.#pending.shift()
      else this.#pending[0] = chunk.subarray(piece.length)
    }
    this.#pendingBytes -= size
    return buffer.subarray(0, size)
  }

  /** Starts sending `part` once the part before it is sent: one in flight, the next one filling. */
  async #sendPart (part: Buffer): Promise<void> {
    const { bucket } = this.#target
    this.#uploadId ??= this.#target.send('CreateMultipartUpload', { Bucket: bucket, Key: this.key }).then(({ UploadId }: { UploadId: string }) => UploadId)
    await this.#inFlight
    if (this.#failure !== undefined) throw this.#failure
    if (this.#state === 'aborted') throw new Error('upload aborted')
    const number = ++this.#partNumber
    if (number % PARTS_PER_STEP === 0) this.#partBytes *= 2
    const uploadId = this.#uploadId
    this.#inFlight = (async () => {
      const { ETag } = await this.#target.send('UploadPart', { Bucket: bucket, Key: this.key, UploadId: await uploadId, PartNumber: number, Body: part }) as { ETag: string }
      this.#parts.push({ ETag, PartNumber: number })
      this.onReleased?.(part.length)
    })().catch((error: unknown) => { this.#failure ??= error })
  }
}

/**
 * The body made of `chunks` in parts of `partBytes` (the last one shorter), walking the chunks
 * once: a part that lies in one chunk is a view of it, else one copy of its own bytes (never of
 * the whole body).
 */
export function * partsOf (chunks: readonly Buffer[], partBytes: number): Generator<Buffer, undefined> {
  let pieces: Buffer[] = []
  let size = 0
  for (const chunk of chunks) {
    for (let offset = 0; offset < chunk.length;) {
      const piece = chunk.subarray(offset, offset + partBytes - size)
      pieces.push(piece)
      size += piece.length
      offset += piece.length
      if (size === partBytes) {
        yield pieces.length === 1 ? piece : Buffer.concat(pieces, size)
        pieces = []
        size = 0
      }
    }
  }
  if (size > 0) yield pieces.length === 1 ? pieces[0] as Buffer : Buffer.concat(pieces, size)
  return undefined
}

/** The travelling headers as the object's own: S3 serves them with the body. */
export function objectHeaders (headers: Headers): Record<string, string> {
  const names: Record<(typeof TRAVELLING_HEADERS)[number], string> = {
    'content-type': 'ContentType',
    'content-encoding': 'ContentEncoding',
    'content-disposition': 'ContentDisposition',
    'cache-control': 'CacheControl'
  }
  const object: Record<string, string> = {}
  for (const name of TRAVELLING_HEADERS) {
    const value = headers[name]
    if (value !== undefined) object[names[name]] = Array.isArray(value) ? value.join(', ') : value
  }
  return object
}
