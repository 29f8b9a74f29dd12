import type { Readable } from 'node:stream'
import type { ExternalBody, Headers, UploadedBody } from '../core/wire.js'

export type { ExternalBody, UploadedBody }

/**
 * Where result bodies too large for the store (or for the front end the request came through)
 * go: an object store the client downloads from directly, through a short-lived URL. Written
 * for S3's semantics (whole objects appear at once, multipart for large ones, presigned GETs);
 * implementations pass `resultsContract` (`src/testing/`, shipped as `fastify-long-running/testing`).
 */

/** The response headers that travel with a body kept outside: the object store serves them. */
export const TRAVELLING_HEADERS = ['content-type', 'content-encoding', 'content-disposition', 'cache-control'] as const

/** The methods a result's URL is signed for. @default 'GET' */
export type UrlMethod = 'GET' | 'HEAD'

/** The contract. */
export interface ResultBodies {
  /** Bodies of at least this many bytes go out of the store even when the front end could return them. */
  readonly thresholdBytes: number
  /**
   * The longest `resultTtlSeconds` whose bodies this store is sure to keep (a bucket's lifecycle
   * deletes them after so many days): the plugin refuses a longer one at registration, since a
   * result would outlive its body. Absent: no such limit is known.
   */
  readonly maxResultTtlSeconds?: number
  /**
   * Stores job `id`'s body from the attempt of `owner`, with the travelling headers. The body
   * comes whole or as the chunks the route wrote, in order: a large one is then held once, so
   * join chunks only a part at a time. Resolves once the whole object exists; a failure leaves
   * no object that could ever be served.
   */
  put (id: string, owner: string, body: Buffer | readonly Buffer[], headers: Headers): Promise<ExternalBody>
  /**
   * A URL the client can fetch the body from, for a short while, with `method`: S3 checks the
   * method a URL was signed for, so a `HEAD` gets a URL of its own.
   */
  url (body: ExternalBody, method?: UrlMethod): Promise<string>
  /** Removes every body of job `id`, of any attempt. */
  delete (id: string): Promise<void>
  /** Releases connections. */
  close? (): Promise<void>

  // Request bodies (uploads), the other direction: optional, a store without them keeps every
  // request body in the job's message or record, within the route's `bodyLimit`.

  /** Request bodies over this many bytes are streamed here as they arrive; absent: no uploads. */
  readonly uploadThresholdBytes?: number
  /**
   * The most bytes an upload holds in memory at once (the part filling and the parts being
   * sent): what the embedded default's memory budget counts for an upload in flight.
   */
  readonly uploadBufferBytes?: number
  /**
   * Starts storing a request body under job `id` (its key is the writer's). The body arrives
   * through the writer chunk by chunk, never whole; nothing can be read until `end` resolves.
   */
  upload? (id: string): BodyWriter
  /**
   * The uploaded body, streamed (for the job's replay); the stream fails if the object does.
   * Rejects with `UploadMissingError` when the object is gone for good (the job then ends).
   */
  open? (body: UploadedBody, signal?: AbortSignal): Promise<Readable>
  /** Removes an uploaded body (its job ended, or the request never became one). */
  discard? (body: Pick<UploadedBody, 'key'>): Promise<void>
}

/** A request body on its way to the bucket (see {@link ResultBodies.upload}). */
export interface BodyWriter {
  /** The object's key. */
  readonly key: string
  /**
   * Takes the next chunk. Resolves once the writer may take another: when it holds a part to
   * send and another one in flight, only when a part is sent. Rejects if sending failed.
   */
  write (chunk: Buffer): Promise<void>
  /** Sends what is left and makes the object; resolves with its length once it can be read. */
  end (): Promise<number>
  /**
   * The object's entity tag, once `end` resolved, if the bucket gave one: {@link ResultBodies.open}
   * then reads that object and no other (`UploadedBody.etag`).
   */
  readonly etag?: string | undefined
  /** Gives the upload up: no object is left, no part kept (billed) in the bucket. Never rejects. */
  abort (): Promise<void>
  /** Told of the bytes of each part once sent: they are no longer held in memory. */
  onReleased?: (bytes: number) => void
}
