import type { Announced } from './redis-watch.js'
import { responseOf } from '../core/blob.js'
import { isExpired, type JobRecord, type JobStatus } from '../core/job-state.js'
import type { NewJob } from './store.js'

/**
 * How a job lives in Redis: one hash per job, `{prefix:id}:job`, whose braces are a Redis
 * Cluster hash tag (every key of a job in one slot, so that each Lua script touches one slot);
 * one hash per idempotency key, `{prefix:key:digest}`; one pub/sub channel per store,
 * `prefix:events`, carrying the id of each job that changed.
 */
export interface RedisKeys {
  job (id: string): string
  key (digest: string): string
  readonly channel: string
}

export function redisKeys (prefix: string): RedisKeys {
  return {
    job: id => `{${prefix}:${id}}:job`,
    key: digest => `{${prefix}:key:${digest}}`,
    channel: `${prefix}:events`
  }
}

/** Fields of a job's hash. The claim-checked request (`req`) is only read by a claim. */
export const F = {
  status: 'st',
  attempt: 'att',
  waitSeconds: 'ws',
  createdAt: 'ca',
  expiresAt: 'exp',
  binding: 'bind',
  owner: 'own',
  leaseUntil: 'lease',
  progress: 'prog',
  response: 'res',
  request: 'req',
  key: 'kd',
  messageDigest: 'md'
} as const

/** What a read fetches (`HMGET`) and a refused claim returns (`RECORD` in the scripts), in this order: the record and its response. */
export const RECORD_FIELDS = [F.status, F.attempt, F.waitSeconds, F.createdAt, F.expiresAt, F.binding, F.owner, F.leaseUntil, F.progress, F.response]

/** What a change message carries after the job's id (JSON, `false` for a field not set): the record but its response. */
export const ANNOUNCED_FIELDS = RECORD_FIELDS.slice(0, -1)

/**
 * What a change message (`id` or `id JSON`, see the scripts' `announce`) tells: the job's id at
 * once, and its record only when asked (for a job watched here), or `'read'` when the message
 * does not tell enough: a bare id (a deletion, an older writer), a finished job (its response
 * is not in the message), or a message not understood.
 */
export function announcedRecord (message: string, now: number): Announced {
  const space = message.indexOf(' ')
  if (space === -1) return { id: message, record: () => 'read' }
  const id = message.slice(0, space)
  return {
    id,
    record: () => {
      const values = announcedValues(message.slice(space + 1))
      if (values === undefined) return 'read'
      const record = recordOf(id, [...values, null], now)
      return record?.status === 'done' ? 'read' : record
    }
  }
}

/**
 * The record of a job this process has just ended: what the `end` script announced (`json`)
 * with the response it stored (`blob`), so that watchers here need no read; undefined when that
 * does not spell a finished job (its watchers then hear the change message).
 */
export function endedRecord (id: string, json: string, blob: Buffer, now: number): JobRecord | undefined {
  const values = announcedValues(json)
  const record = values === undefined ? undefined : recordOf(id, [...values, blob], now)
  return record?.status === 'done' ? record : undefined
}

/** The fields of {@link ANNOUNCED_FIELDS} that an announced JSON array spells, or undefined. */
function announcedValues (json: string): Value[] | undefined {
  let fields: unknown
  try {
    fields = JSON.parse(json)
  } catch {
    return undefined
  }
  if (!Array.isArray(fields) || fields.length !== ANNOUNCED_FIELDS.length || !fields.every(field => field === false || typeof field === 'string')) return undefined
  return fields.map(field => field === false ? null : Buffer.from(field as string))
}

/** The hash fields of a new job whose record is `record`, as `HSET` arguments (its request's bytes apart). */
export function newJobFields (record: JobRecord, job: Pick<NewJob, 'key' | 'messageDigest'>): Array<string | number> {
  const fields: Array<string | number> = [
    F.status, record.status,
    F.attempt, record.attempt,
    F.waitSeconds, record.waitSeconds,
    F.createdAt, record.createdAt,
    F.expiresAt, record.expiresAt
  ]
  if (record.owner !== undefined) fields.push(F.owner, record.owner, F.leaseUntil, record.leaseUntil as number)
  if (record.binding !== undefined) fields.push(F.binding, record.binding)
  if (job.key !== undefined) fields.push(F.key, job.key)
  if (job.messageDigest !== undefined) fields.push(F.messageDigest, job.messageDigest)
  return fields
}

type Value = Buffer | null | undefined

/** The record that `values` ({@link RECORD_FIELDS}, as read) spell; undefined when gone or expired at `now`. */
export function recordOf (id: string, values: readonly Value[], now: number): JobRecord | undefined {
  const [status, attempt, waitSeconds, createdAt, expiresAt, binding, owner, leaseUntil, progress, response] = values
  if (status == null || expiresAt == null) return undefined
  const record: JobRecord = {
    id,
    status: status.toString() as JobStatus,
    attempt: numberOf(attempt),
    waitSeconds: numberOf(waitSeconds),
    createdAt: numberOf(createdAt),
    expiresAt: numberOf(expiresAt)
  }
  if (isExpired(record, now)) return undefined
  if (binding != null) record.binding = binding.toString()
  if (owner != null) record.owner = owner.toString()
  if (leaseUntil != null) record.leaseUntil = numberOf(leaseUntil)
  if (progress != null) record.progress = JSON.parse(progress.toString())
  if (response != null) record.response = responseOf(response)
  return record
}

function numberOf (value: Value): number {
  return value == null ? 0 : Number(value.toString())
}
