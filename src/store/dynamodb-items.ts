import { gunzipSync, gzipSync } from 'node:zlib'
import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import type { Item } from './dynamodb-table.js'
import type { JobRecord, JobStatus } from '../core/job-state.js'

/**
 * How jobs map onto items of the one table (partition key `id`, TTL attribute `ttl`).
 *
 * The job item holds the state. Bodies (the response, or a claim-checked request) sit inline
 * when they fit, and otherwise in chunk items `{id}#{tag}#{n}` of the same table, which never
 * collide with a job id (a UUID has no `#`). Response chunks carry the owner's token in their
 * tag, so two attempts racing to complete never overwrite each other's chunks: only the
 * chunks named by the winning conditional write are ever read.
 */
export type { Item }
/**
 * Largest packed request or response kept in the job item itself. DynamoDB charges every read
 * and write of an item by its whole size (4 KB read units, 1 KB write units), projections or
 * not: the item that waiting requests poll and workers claim, renew and update stays under 4 KB
 * whatever the sizes of the request and the response; larger ones go to chunk items.
 */
export const INLINE_BYTES = 2048
/** Bytes per chunk item: under 400 KB with its key and attributes. */
export const CHUNK_BYTES = 380 * 1024

/** Attribute names; `#`-placeholders because several (`ttl`, `status`...) are reserved words. */
export const A = {
  id: 'id',
  status: 'st',
  attempt: 'att',
  waitSeconds: 'ws',
  createdAt: 'ca',
  binding: 'bind',
  owner: 'own',
  leaseUntil: 'lease',
  progress: 'prog',
  expiresAt: 'exp',
  ttl: 'ttl',
  /** The response (status, headers, body: one framed blob), inline or in chunks tagged `rt`. */
  response: 'ri',
  responseChunks: 'rc',
  responseTag: 'rt',
  responseEncoding: 'rz',
  /** A claim-checked request (one framed blob), inline or in chunks tagged `q`. */
  request: 'qi',
  requestChunks: 'qc',
  requestEncoding: 'qz'
} as const

/** Attributes the waiting side reads: everything but the claim-checked request. */
export const RECORD_ATTRIBUTES = Object.values(A).filter(name => !['qi', 'qc', 'qz'].includes(name))

export const s = (value: string): AttributeValue => ({ S: value })
export const n = (value: number): AttributeValue => ({ N: String(value) })
export const b = (value: Uint8Array): AttributeValue => ({ B: value })

export function str (item: Item, name: string): string | undefined {
  const value = item[name]
  return value !== undefined && 'S' in value ? value.S : undefined
}

export function num (item: Item, name: string): number | undefined {
  const value = item[name]
  return value !== undefined && 'N' in value ? Number(value.N) : undefined
}

export function bytes (item: Item, name: string): Buffer | undefined {
  const value = item[name]
  return value !== undefined && 'B' in value && value.B !== undefined ? Buffer.from(value.B) : undefined
}

/** Epoch seconds for DynamoDB's TTL, which deletes late: reads check `exp` themselves. */
export function ttlOf (expiresAt: number): number {
  return Math.ceil(expiresAt / 1000)
}

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

export function unpackBody (data: Buffer, encoding: string | undefined): Buffer {
  return encoding === 'gzip' ? gunzipSync(data) : data
}

/** Key of chunk `index` of a body tagged `tag` (e.g. `r.{owner}` or `q`). */
export function chunkKey (id: string, tag: string, index: number): string {
  return `${id}#${tag}#${index}`
}

/** The job state of an item (without the response body, which the store assembles). */
export function recordOf (item: Item): JobRecord {
  const record: JobRecord = {
    id: str(item, A.id) as string,
    status: str(item, A.status) as JobStatus,
    attempt: num(item, A.attempt) ?? 0,
    waitSeconds: num(item, A.waitSeconds) ?? 0,
    createdAt: num(item, A.createdAt) ?? 0,
    expiresAt: num(item, A.expiresAt) ?? 0
  }
  const binding = str(item, A.binding)
  if (binding !== undefined) record.binding = binding
  const owner = str(item, A.owner)
  if (owner !== undefined) record.owner = owner
  const leaseUntil = num(item, A.leaseUntil)
  if (leaseUntil !== undefined) record.leaseUntil = leaseUntil
  const progress = str(item, A.progress)
  if (progress !== undefined) record.progress = JSON.parse(progress)
  return record
}

/** Keys of a body's chunk items. */
export function chunkKeys (id: string, tag: string, count: number | undefined): string[] {
  return Array.from({ length: count ?? 0 }, (_, index) => chunkKey(id, tag, index))
}
