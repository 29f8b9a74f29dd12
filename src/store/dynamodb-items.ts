import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import type { Item } from './dynamodb-table.js'
import { JobStatus, type JobRecord } from '../core/job-state.js'
import type { NewJob } from './store.js'

/**
 * How a job's state maps onto its item of the one table (partition key `id`, TTL attribute
 * `ttl`): attribute names, attribute values, and the record read back. Bodies have their own
 * file (dynamodb-bodies.ts).
 */
export type { Item }
/** Attribute names; `#`-placeholders because several (`ttl`, `status`...) are reserved words. */
export const ATTR = {
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
  requestEncoding: 'qz',
  /** Digest of the idempotency key whose reservation names the job (dynamodb-keys.ts). */
  key: 'kd',
  messageDigest: 'md'
} as const

/** Attributes the waiting side reads: everything but the claim-checked request. */
export const RECORD_ATTRIBUTES = Object.values(ATTR).filter(name => !['qi', 'qc', 'qz'].includes(name))

/** A string attribute value (`{ S }`). */
export const stringValue = (value: string): AttributeValue => ({ S: value })
/** A number attribute value (`{ N }`: DynamoDB sends numbers as strings). */
export const numberValue = (value: number): AttributeValue => ({ N: String(value) })
/** A binary attribute value (`{ B }`). */
export const binaryValue = (value: Uint8Array): AttributeValue => ({ B: value })

/** The string attribute `name` of `item`, if it has one. */
export function readString (item: Item, name: string): string | undefined {
  const value = item[name]
  return value !== undefined && 'S' in value ? value.S : undefined
}

/** The number attribute `name` of `item`, if it has one. */
export function readNumber (item: Item, name: string): number | undefined {
  const value = item[name]
  return value !== undefined && 'N' in value ? Number(value.N) : undefined
}

/** The binary attribute `name` of `item`, if it has one. */
export function readBytes (item: Item, name: string): Buffer | undefined {
  const value = item[name]
  return value !== undefined && 'B' in value && value.B !== undefined ? Buffer.from(value.B) : undefined
}

/** Epoch seconds for DynamoDB's TTL, which deletes late: reads check `exp` themselves. */
export function ttlOf (expiresAt: number): number {
  return Math.ceil(expiresAt / 1000)
}

/** The item of a new job, pending or claimed for its first attempt (without its request's body). */
export function newJobItem (job: NewJob): Item {
  const item: Item = {
    [ATTR.id]: stringValue(job.id),
    [ATTR.status]: stringValue(JobStatus.pending),
    [ATTR.attempt]: numberValue(0),
    [ATTR.waitSeconds]: numberValue(job.waitSeconds),
    [ATTR.createdAt]: numberValue(job.createdAt),
    [ATTR.expiresAt]: numberValue(job.expiresAt),
    [ATTR.ttl]: numberValue(ttlOf(job.expiresAt))
  }
  if (job.binding !== undefined) item[ATTR.binding] = stringValue(job.binding)
  if (job.key !== undefined) item[ATTR.key] = stringValue(job.key)
  if (job.messageDigest !== undefined) item[ATTR.messageDigest] = stringValue(job.messageDigest)
  if (job.claim !== undefined) {
    Object.assign(item, {
      [ATTR.status]: stringValue(JobStatus.running),
      [ATTR.attempt]: numberValue(1),
      [ATTR.owner]: stringValue(job.claim.owner),
      [ATTR.leaseUntil]: numberValue(job.claim.leaseUntil)
    })
  }
  return item
}

/** The job state of an item (without the response body, which the store assembles). */
export function recordOf (item: Item): JobRecord {
  const record: JobRecord = {
    id: readString(item, ATTR.id) as string,
    status: readString(item, ATTR.status) as JobStatus,
    attempt: readNumber(item, ATTR.attempt) ?? 0,
    waitSeconds: readNumber(item, ATTR.waitSeconds) ?? 0,
    createdAt: readNumber(item, ATTR.createdAt) ?? 0,
    expiresAt: readNumber(item, ATTR.expiresAt) ?? 0
  }
  const binding = readString(item, ATTR.binding)
  if (binding !== undefined) record.binding = binding
  const owner = readString(item, ATTR.owner)
  if (owner !== undefined) record.owner = owner
  const leaseUntil = readNumber(item, ATTR.leaseUntil)
  if (leaseUntil !== undefined) record.leaseUntil = leaseUntil
  const progress = readString(item, ATTR.progress)
  if (progress !== undefined) record.progress = JSON.parse(progress)
  return record
}
