import { gunzipSync, gzipSync } from 'node:zlib'
import { BackendError } from '../errors.js'
import { ATTR, binaryValue, numberValue, readBytes, readNumber, readString, stringValue, ttlOf } from './dynamodb-items.js'
import type { DynamoDbTable, Item } from './dynamodb-table.js'

/**
 * Bodies in the job table: the response, or a request too large for its queue message
 * (claim-check). A body sits inline in the job's item when it fits, and otherwise in chunk
 * items `{id}#{tag}#{n}` of the same table, which never collide with a job id (a UUID has no
 * `#`). Response chunks carry the owner's token in their tag, so two attempts racing to
 * complete never overwrite each other's chunks: only the chunks named by the winning
 * conditional write are ever read.
 */

/**
 * Largest packed request or response kept in the job item itself. DynamoDB charges every read
 * and write of an item by its whole size (4 KB read units, 1 KB write units), projections or
 * not: the item that waiting requests poll and workers claim, renew and update stays under 4 KB
 * whatever the sizes of the request and the response; larger ones go to chunk items.
 */
export const INLINE_BYTES = 2048
/** Bytes per chunk item: under 400 KB with its key and attributes. */
export const CHUNK_BYTES = 380 * 1024

/** The attributes of the job's item that hold one body: inline bytes, chunk count, encoding. */
export interface BodyAttributes { inline: string, chunks: string, encoding: string }

export const REQUEST_BODY: BodyAttributes = { inline: ATTR.request, chunks: ATTR.requestChunks, encoding: ATTR.requestEncoding }
export const RESPONSE_BODY: BodyAttributes = { inline: ATTR.response, chunks: ATTR.responseChunks, encoding: ATTR.responseEncoding }

/** The chunk tag of a claim-checked request. */
export const REQUEST_TAG = 'q'

/** A body ready to store: compressed when that pays, then inline or cut into chunks. */
export interface PackedBody {
  encoding: 'gzip' | 'identity'
  inline?: Buffer
  chunks?: Buffer[]
}

// Compressing is tried on a sample first: already-compressed content (images, zips) is
// common and would only cost CPU.
const SAMPLE_BYTES = 64 * 1024

export function packBody (body: Buffer): PackedBody {
  let encoding: PackedBody['encoding'] = 'identity'
  let data = body
  if (body.length > 1024 && gzipSync(body.subarray(0, SAMPLE_BYTES)).length < Math.min(body.length, SAMPLE_BYTES) * 0.9) {
    const compressed = gzipSync(body)
    if (compressed.length < body.length) {
      encoding = 'gzip'
      data = compressed
    }
  }
  if (data.length <= INLINE_BYTES) return { encoding, inline: data }
  const chunks: Buffer[] = []
  for (let offset = 0; offset < data.length; offset += CHUNK_BYTES) chunks.push(data.subarray(offset, offset + CHUNK_BYTES))
  return { encoding, chunks }
}

function unpackBody (data: Buffer, encoding: string | undefined): Buffer {
  return encoding === 'gzip' ? gunzipSync(data) : data
}

/** Key of chunk `index` of a body tagged `tag` (e.g. `r.{owner}` or `q`). */
function chunkKey (id: string, tag: string, index: number): string {
  return `${id}#${tag}#${index}`
}

/** Keys of a body's chunk items. */
function chunkKeys (id: string, tag: string, count: number | undefined): string[] {
  return Array.from({ length: count ?? 0 }, (_, index) => chunkKey(id, tag, index))
}

/** The job item's attributes that name its chunk items: what `delete` reads to find them. */
export const CHUNK_ATTRIBUTES = [ATTR.requestChunks, ATTR.responseChunks, ATTR.responseTag]

/** Keys of every chunk item that job `id`'s `item` names (read with {@link CHUNK_ATTRIBUTES}). */
export function chunkKeysOf (id: string, item: Item): string[] {
  return [
    ...chunkKeys(id, REQUEST_TAG, readNumber(item, ATTR.requestChunks)),
    ...chunkKeys(id, readString(item, ATTR.responseTag) ?? '', readNumber(item, ATTR.responseChunks))
  ]
}

/** Writes and reads the bodies of one table's jobs. */
export class DynamoDbBodies {
  readonly #db: DynamoDbTable

  constructor (db: DynamoDbTable) {
    this.#db = db
  }

  /** The job item's attributes for `packed`: the bytes themselves, or the count of its chunks. */
  attributes (packed: PackedBody, to: BodyAttributes): Item {
    return packed.inline !== undefined
      ? { [to.inline]: binaryValue(packed.inline), [to.encoding]: stringValue(packed.encoding) }
      : { [to.chunks]: numberValue(packed.chunks?.length ?? 0), [to.encoding]: stringValue(packed.encoding) }
  }

  /** Writes the chunk items of `packed` (none when it is inline), to expire with the job. */
  async putChunks (id: string, tag: string, packed: PackedBody, expiresAt: number): Promise<void> {
    await this.#db.batchWrite((packed.chunks ?? []).map((data, index) => ({
      PutRequest: { Item: { [ATTR.id]: stringValue(chunkKey(id, tag, index)), data: binaryValue(data), [ATTR.ttl]: numberValue(ttlOf(expiresAt)) } }
    })))
  }

  /** The body `from` of the job's `item`, its chunks read and joined; undefined when it has none. */
  async read (item: Item, id: string, tag: string, from: BodyAttributes): Promise<Buffer | undefined> {
    const count = readNumber(item, from.chunks)
    let data = readBytes(item, from.inline)
    if (count !== undefined) {
      const keys = chunkKeys(id, tag, count)
      const parts = new Map((await this.#db.batchGet(keys, [ATTR.id, 'data'])).map(part => [readString(part, ATTR.id), readBytes(part, 'data')]))
      data = Buffer.concat(keys.map(key => {
        const part = parts.get(key)
        if (part === undefined) throw new BackendError(`chunk ${key} missing`)
        return part
      }))
    }
    return data === undefined ? undefined : unpackBody(data, readString(item, from.encoding))
  }
}
