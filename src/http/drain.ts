import { finished } from 'node:stream/promises'
import type { FastifyRequest } from 'fastify'
import { capturedOf, tooLarge } from './capture.js'

/**
 * Reads whatever of the body the route's parser left unread (a multipart parser leaves the
 * stream to the handler, which on this side never runs), so that the job gets the whole body
 * and the client's upload is not held up by back-pressure. At most the route's `bodyLimit`,
 * but for a multipart body going to a bucket: the route's multipart limits decide then, in the
 * job's replay, as they would synchronously.
 */
export async function drainBody (request: FastifyRequest): Promise<void> {
  const captured = capturedOf(request)
  if (captured === undefined) return
  const { tee, limit } = captured
  const http1 = request.raw.httpVersionMajor === 1
  if (captured.overLimit) throw tooLarge(limit, http1)
  if (tee.readableEnded) return
  // The rest of the upload is never read: the connection closes after the 413, or the client
  // would go on sending into it and the server could never close (Fastify waits for it).
  tee.on('data', (chunk: Buffer) => {
    // An uploaded chunk read here is held by nobody any more (the bytes kept went to the bucket).
    if (captured.writer !== undefined) captured.released(chunk.length)
    if (captured.overLimit || captured.bytes > limit) tee.destroy(tooLarge(limit, http1))
  })
  tee.resume()
  await finished(tee)
}
