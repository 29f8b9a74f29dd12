import type { ExternalBody, Headers } from '../core/wire.js'

export type { ExternalBody }

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
}
