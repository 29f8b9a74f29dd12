import { createHash } from 'node:crypto'
import { InvalidMessageError } from '../errors.js'
import { isJobId } from '../core/job-id.js'
import { MAX_ATTEMPTS, MAX_RESULT_TTL_SECONDS, MAX_TIMEOUT_SECONDS } from '../core/job-limits.js'
import { isObject, snapshotFromJson, snapshotToJson, type RequestSnapshot } from '../core/wire.js'

/** Wire format version; a worker refuses messages of any other version instead of guessing. */
export const MESSAGE_VERSION = 1

/** What travels through the queue for one job. */
export interface JobMessage {
  id: string
  timeoutSeconds: number
  maxAttempts: number
  resultTtlSeconds: number
  /** When the HTTP side accepted the job (epoch ms), for the job's timing. */
  enqueuedAt?: number
  /**
   * The largest Lambda response JSON the front end the request came through can return
   * (API Gateway, a function URL, an ALB); absent when it did not come through Lambda.
   */
  responseLimit?: number
  /** The request; absent when it was too large for the queue and waits in the store instead. */
  request?: RequestSnapshot
  /**
   * Sent delayed while the process that accepted the job runs it: it matters only if that
   * process dies. A delivery that finds the job still running sends it again, delayed, rather
   * than counting receives towards the dead-letter queue.
   */
  backup?: true
  /**
   * The id of the request that queued the job (Fastify's `request.id`): a job run's log lines
   * carry it as `requestId`, so that an operator gets from a client's request to its job's lines.
   */
  requestId?: string
}

/** A request id fit for a log field: what Fastify's default and common id generators make. */
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/

/**
 * Serialises a message; the body travels as base64 so that any bytes survive JSON. SQS takes
 * only #x9, #xA, #xD, #x20 to #xD7FF, #xE000 to #xFFFD and #x10000 to #x10FFFF (SendMessage,
 * SQS API Reference): JSON escapes control characters and lone surrogates itself, and the two
 * noncharacters it leaves as they are are escaped here.
 */
export function encodeMessage (message: JobMessage): string {
  return JSON.stringify(messageJson(message)).replace(/[\uFFFE\uFFFF]/g, char => `\\u${char.charCodeAt(0).toString(16)}`)
}

/** A message's JSON form, as {@link encodeMessage} writes it. */
export function messageJson (message: JobMessage): Record<string, unknown> {
  const { request, ...rest } = message
  return { v: MESSAGE_VERSION, ...rest, ...(request === undefined ? {} : { request: snapshotToJson(request) }) }
}

/**
 * Parses and checks a message from the queue. Throws `InvalidMessageError` for anything that
 * could never run, so that the consumer drops it instead of retrying it forever.
 */
export function decodeMessage (body: string): JobMessage {
  let raw: unknown
  try {
    raw = JSON.parse(body)
  } catch {
    throw new InvalidMessageError('not JSON')
  }
  if (!isObject(raw)) throw new InvalidMessageError('not an object')
  if (raw.v !== MESSAGE_VERSION) throw new InvalidMessageError(`version ${String(raw.v)} is not ${MESSAGE_VERSION}`)
  if (!isJobId(raw.id)) throw new InvalidMessageError('bad id')
  const message: JobMessage = {
    id: raw.id,
    timeoutSeconds: positive(raw.timeoutSeconds, 'timeoutSeconds', MAX_TIMEOUT_SECONDS),
    maxAttempts: positive(raw.maxAttempts, 'maxAttempts', MAX_ATTEMPTS),
    resultTtlSeconds: positive(raw.resultTtlSeconds, 'resultTtlSeconds', MAX_RESULT_TTL_SECONDS)
  }
  if (raw.enqueuedAt !== undefined) message.enqueuedAt = positive(raw.enqueuedAt, 'enqueuedAt')
  if (raw.responseLimit !== undefined) message.responseLimit = positive(raw.responseLimit, 'responseLimit')
  if (raw.backup !== undefined) {
    if (raw.backup !== true) throw new InvalidMessageError('bad backup')
    message.backup = true
  }
  if (raw.requestId !== undefined) {
    if (typeof raw.requestId !== 'string' || !REQUEST_ID.test(raw.requestId)) throw new InvalidMessageError('bad requestId')
    message.requestId = raw.requestId
  }
  if (raw.request !== undefined) message.request = snapshotFromJson(raw.request)
  return message
}

function positive (value: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max) {
    throw new InvalidMessageError(`bad ${name}`)
  }
  return value
}

/**
 * The digest of what a message asks a worker to do, from its JSON form ({@link messageJson}, or
 * a message as parsed from the queue, valid or not): the job, its time limits and lifetime, and
 * the request (method, URL, headers, body, origin, carried values) when it travels inside. The
 * HTTP side stores it with the job, and a worker claims the job only for a message with the
 * same digest: the queue is no way to run anything the HTTP side did not accept, even for a
 * writer of the queue who knows a job id. Not covered, as they only label logs and timings:
 * `enqueuedAt`, `requestId` and `backup`.
 */
export function messageDigest (json: Record<string, unknown>): string {
  const { v, id, timeoutSeconds, maxAttempts, resultTtlSeconds, responseLimit, request } = json
  const parts = [v, id, timeoutSeconds, maxAttempts, resultTtlSeconds, responseLimit ?? null, request ?? null]
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url')
}
