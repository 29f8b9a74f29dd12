import { METHODS } from 'node:http'
import { InvalidMessageError } from '../errors.js'

// The job's wire format: what a request and a response look like once they leave the process
// that saw them, and the one codec that the queue message and the store both use for them.

/** Header values as Node gives them: several `set-cookie` stay an array. */
export type Headers = Record<string, string | string[]>

/** A JSON value, as `carry` may return it. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

/** How the HTTP side saw the request's origin; the job's `request.ip`, `protocol` and `host` are these. */
export interface RequestOrigin {
  ip: string
  protocol: 'http' | 'https'
  host: string
}

/** The request as the client sent it, minus hop-by-hop headers; `body` holds the exact bytes. */
export interface RequestSnapshot {
  method: string
  url: string
  headers: Headers
  body?: Buffer
  /** Absent in messages of older senders: the replay then comes from the loopback address. */
  origin?: RequestOrigin
  /** What the route's `carry` returned on the HTTP side, set on the job's request. */
  carried?: Record<string, JsonValue>
}

/** A body kept outside the store (in S3): the object's key and its length. */
export interface ExternalBody {
  key: string
  bytes: number
}

/** A complete HTTP response: what the route gave, byte for byte. */
export interface StoredResponse {
  statusCode: number
  headers: Headers
  /** Empty when the body is `external`. */
  body: Buffer
  /** Where the body is when it is too large for the store or the front end (`results`). */
  external?: ExternalBody
}

/** A {@link RequestSnapshot} as JSON: the body, when it travels inline, as base64. */
export interface SnapshotJson {
  method: string
  url: string
  headers: Headers
  body?: string
  origin?: RequestOrigin
  carried?: Record<string, JsonValue>
}

/**
 * The JSON form of a snapshot. `inlineBody: false` leaves the body out, for a store that keeps
 * the bytes beside the JSON (and gives them back to {@link snapshotFromJson}).
 */
export function snapshotToJson (snapshot: RequestSnapshot, inlineBody = true): SnapshotJson {
  const json: SnapshotJson = { method: snapshot.method, url: snapshot.url, headers: snapshot.headers }
  if (inlineBody && snapshot.body !== undefined) json.body = snapshot.body.toString('base64')
  if (snapshot.origin !== undefined) json.origin = snapshot.origin
  if (snapshot.carried !== undefined) json.carried = snapshot.carried
  return json
}

// Only methods Node (and so the replay) knows: any other could never run.
const METHOD = new Set(METHODS)
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/**
 * Parses and checks a snapshot's JSON form; `body` is the out-of-line body, when the JSON has
 * none inline. Throws `InvalidMessageError` for anything that could never be replayed.
 */
export function snapshotFromJson (raw: unknown, body?: Buffer): RequestSnapshot {
  if (!isObject(raw)) throw new InvalidMessageError('bad request')
  const { method, url, headers } = raw
  if (typeof method !== 'string' || !METHOD.has(method)) throw new InvalidMessageError('bad method')
  if (typeof url !== 'string' || !url.startsWith('/')) throw new InvalidMessageError('bad url')
  const snapshot: RequestSnapshot = { method, url, headers: checkHeaders(headers) }
  if (raw.body !== undefined) {
    if (typeof raw.body !== 'string' || !BASE64.test(raw.body)) throw new InvalidMessageError('bad body')
    snapshot.body = Buffer.from(raw.body, 'base64')
  } else if (body !== undefined) {
    snapshot.body = body
  }
  if (raw.origin !== undefined) snapshot.origin = checkOrigin(raw.origin)
  if (raw.carried !== undefined) {
    if (!isObject(raw.carried)) throw new InvalidMessageError('bad carried values')
    snapshot.carried = raw.carried as Record<string, JsonValue>
  }
  return snapshot
}

const HOST = /^[^\s/?#@]{1,1024}$/

function checkOrigin (raw: unknown): RequestOrigin {
  const ok = isObject(raw) && typeof raw.ip === 'string' && raw.ip.length > 0 && raw.ip.length <= 64 &&
    (raw.protocol === 'http' || raw.protocol === 'https') && typeof raw.host === 'string' && HOST.test(raw.host)
  if (!ok) throw new InvalidMessageError('bad origin')
  return { ip: raw.ip as string, protocol: raw.protocol as RequestOrigin['protocol'], host: raw.host as string }
}

/** Checks a headers object read back from JSON. */
export function checkHeaders (value: unknown): Headers {
  const ok = isObject(value) && Object.values(value).every(v =>
    typeof v === 'string' || (Array.isArray(v) && v.every(item => typeof item === 'string')))
  if (!ok) throw new InvalidMessageError('bad headers')
  return value as Headers
}

export function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
