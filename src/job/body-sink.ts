import { ServerResponse } from 'node:http'

/**
 * Receives the body of a job run chunk by chunk, as the route (or its `onSend` hooks) wrote it,
 * with the response it is written to (its headers are sent by then).
 */
export type BodySink = (chunk: Buffer, response: ServerResponse) => void

/**
 * Makes `res`, the response object of a job run's replay (light-my-request's), hand the body's
 * chunks to `sink` as they are written, without copying them. light-my-request copies every
 * chunk (`Buffer.from(chunk)`) into its own stream: a route that sends a 50 MiB buffer would
 * cost the worker that buffer twice. Keeping the route's chunk rather than a copy is what a
 * socket does too: a chunk passed to `write` is the writer's to leave alone until it is sent.
 *
 * Installed before anything is written (an `onRequest` hook), so that every body byte of the
 * run takes this way; light-my-request still frames the response (headers, `finish`) and its
 * stream ends empty.
 */
export function sinkBody (res: ServerResponse, sink: BodySink): void {
  const write = function (this: ServerResponse & { _hasBody?: boolean }, chunk: string | Uint8Array, encoding?: BufferEncoding | ((error?: Error | null) => void), callback?: (error?: Error | null) => void): boolean {
    // Headers, `_hasBody` and the write's callback, as for any response; the socket is a null one.
    ServerResponse.prototype.write.call(this, chunk, encoding as BufferEncoding, callback)
    // Like a real server: no body for HEAD requests and 204 or 304 responses.
    if (this._hasBody === false) return true
    // Cut (a body that can never be kept): like a socket's, writes fail, and a writer that
    // waits for `drain` stops here instead of writing on at full speed.
    if (this.destroyed) return false
    sink(typeof chunk === 'string' ? Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength), this)
    // Everything is kept in memory anyway: asking the route to wait for a drain would only slow it.
    return true
  }
  res.write = write as ServerResponse['write']
}
