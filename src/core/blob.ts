import { InvalidMessageError } from '../errors.js'
import { checkHeaders, snapshotFromJson, snapshotToJson, type RequestSnapshot, type StoredResponse } from './wire.js'

// Requests and responses as one binary blob each, for a store that keeps bytes rather than JSON:
// the body stays raw beside a JSON head, never base64'd.

/**
 * One blob for a request or a response: `[u32 length][JSON head][u8 has body][body]`. The head
 * is the one snapshot codec's JSON with the body left out, or the response's status and headers.
 */
function frame (head: unknown, body: Buffer | undefined): Buffer {
  const json = Buffer.from(JSON.stringify(head))
  const prefix = Buffer.alloc(5)
  prefix.writeUInt32BE(json.length, 0)
  prefix.writeUInt8(body === undefined ? 0 : 1, 4)
  return Buffer.concat([prefix.subarray(0, 4), json, prefix.subarray(4), body ?? Buffer.alloc(0)])
}

function unframe (blob: Buffer): { head: unknown, body: Buffer | undefined } {
  const length = blob.readUInt32BE(0)
  const head: unknown = JSON.parse(blob.subarray(4, 4 + length).toString())
  return { head, body: blob.readUInt8(4 + length) === 1 ? blob.subarray(5 + length) : undefined }
}

/** A request as one blob (see `frame`). */
export function requestBlob (request: RequestSnapshot): Buffer {
  return frame(snapshotToJson(request, false), request.body)
}

/** The request of a {@link requestBlob}; throws `InvalidMessageError` for one that could never run. */
export function requestOf (blob: Buffer): RequestSnapshot {
  const { head, body } = unframe(blob)
  return snapshotFromJson(head, body)
}

/** A response as one blob; an external body's key travels in the head. */
export function responseBlob (response: StoredResponse): Buffer {
  const head = { statusCode: response.statusCode, headers: response.headers }
  return frame(response.external === undefined ? head : { ...head, external: response.external }, response.body)
}

/** The response of a {@link responseBlob}; throws `InvalidMessageError` when malformed. */
export function responseOf (blob: Buffer): StoredResponse {
  const { head, body } = unframe(blob)
  const { statusCode, headers, external } = head as { statusCode: unknown, headers: unknown, external?: { key?: unknown, bytes?: unknown } }
  if (typeof statusCode !== 'number') throw new InvalidMessageError('bad stored response')
  const response: StoredResponse = { statusCode, headers: checkHeaders(headers), body: body ?? Buffer.alloc(0) }
  if (external !== undefined) {
    if (typeof external.key !== 'string' || typeof external.bytes !== 'number') throw new InvalidMessageError('bad stored response')
    response.external = { key: external.key, bytes: external.bytes }
  }
  return response
}
