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
  /**
   * Where the body is instead, when it was larger than the bodies bucket's threshold: streamed
   * there as it arrived (`ResultBodies.upload`), and streamed back to the replay.
   */
  upload?: UploadedBody
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

/**
 * A request body kept in the bodies bucket: the object's key, its length and its SHA-256
 * (base64url, as the idempotency fingerprint digests bodies), and the entity tag the bucket gave
 * the object, when it gives one (S3's ETag): the replay reads that object or none, so a body
 * replaced in the bucket never reaches the route. Part of the snapshot, and so of the message
 * digest: a forged message cannot point a job at another object.
 */
export interface UploadedBody {
  key: string
  bytes: number
  sha256: string
  etag?: string
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
  upload?: UploadedBody
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
  if (snapshot.upload !== undefined) json.upload = snapshot.upload
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
  const { method, url } = raw
  if (typeof method !== 'string' || typeof url !== 'string') throw new InvalidMessageError('bad request')
  const snapshot: RequestSnapshot = { method, url, headers: checkHeaders(raw.headers) }
  if (raw.body !== undefined) {
    if (typeof raw.body !== 'string' || !BASE64.test(raw.body)) throw new InvalidMessageError('bad body')
    snapshot.body = Buffer.from(raw.body, 'base64')
  } else if (body !== undefined) {
    snapshot.body = body
  }
  if (raw.upload !== undefined) {
    if (snapshot.body !== undefined) throw new InvalidMessageError('bad body: inline and uploaded')
    snapshot.upload = uploadedBody(raw.upload)
  }
  if (raw.origin !== undefined) {
    if (!isObject(raw.origin)) throw new InvalidMessageError('bad origin')
    const { ip, protocol, host } = raw.origin
    snapshot.origin = { ip, protocol, host } as RequestOrigin
  }
  if (raw.carried !== undefined) {
    if (!isObject(raw.carried)) throw new InvalidMessageError('bad carried values')
    snapshot.carried = raw.carried as Record<string, JsonValue>
  }
  const problem = snapshotProblem(snapshot)
  if (problem !== undefined) throw new InvalidMessageError(problem)
  return snapshot
}

const SHA256 = /^[A-Za-z0-9_-]{43}$/
// An entity tag as HTTP spells it (RFC 9110 §8.8.3: a quoted string of visible characters).
const ETAG = /^[\x21-\x7e]{1,1024}$/

function uploadedBody (raw: unknown): UploadedBody {
  if (!isObject(raw)) throw new InvalidMessageError('bad upload')
  const { key, bytes, sha256, etag } = raw
  const ok = typeof key === 'string' && key.length > 0 && key.length <= 1024 &&
    typeof bytes === 'number' && Number.isSafeInteger(bytes) && bytes >= 0 &&
    typeof sha256 === 'string' && SHA256.test(sha256) &&
    // Absent from a message of an earlier version, which the digest check alone then guards.
    (etag === undefined || (typeof etag === 'string' && ETAG.test(etag)))
  if (!ok) throw new InvalidMessageError('bad upload')
  return { key, bytes, sha256, ...(etag === undefined ? {} : { etag }) }
}

const HOST = /^[^\s/?#@]{1,1024}$/

/**
 * Names `carry` may not set on a job's request: what would replace its prototype, and Fastify's
 * own request members (Request reference), which the app and Fastify itself rely on. An app's
 * own decorations (`decorateRequest('user', null)`) are what `carry` is for.
 */
const RESERVED_CARRY_KEYS: ReadonlySet<string> = new Set([
  '__proto__', 'constructor', 'prototype',
  'id', 'params', 'raw', 'query', 'body', 'headers', 'log', 'server', 'socket', 'ip', 'ips', 'host', 'hostname',
  'port', 'protocol', 'method', 'url', 'originalUrl', 'routeOptions', 'is404', 'signal', 'context',
  'getValidationFunction', 'compileValidationSchema', 'validateInput', 'getDecorator', 'setDecorator', 'longRunning'
])

/** The first key of `carried` that `carry` may not set, if any. */
export function reservedCarryKey (carried: Record<string, unknown>): string | undefined {
  return Object.keys(carried).find(key => RESERVED_CARRY_KEYS.has(key))
}

/**
 * What a replay needs of a request and this one lacks, if anything: a method Node knows, an
 * origin-form target, and an origin (address, protocol, host) fit to be the job's. The HTTP
 * side asks before it accepts a request as a job, a worker of every request it is sent: both
 * refuse the same ones, so that no accepted job carries a request its worker would drop.
 */
export function snapshotProblem (snapshot: RequestSnapshot): string | undefined {
  if (!METHOD.has(snapshot.method)) return 'bad method'
  if (!snapshot.url.startsWith('/')) return 'bad url: not an origin-form target (/path?query)'
  const reserved = snapshot.carried === undefined ? undefined : reservedCarryKey(snapshot.carried)
  if (reserved !== undefined) return `bad carried values: \`${reserved}\` is the request's own`
  const origin = snapshot.origin
  if (origin === undefined) return undefined
  if (typeof origin.ip !== 'string' || origin.ip.length === 0 || origin.ip.length > 64) return 'bad origin: the client address must have 1 to 64 characters'
  if (origin.protocol !== 'http' && origin.protocol !== 'https') return 'bad origin: protocol'
  if (typeof origin.host !== 'string' || !HOST.test(origin.host)) return 'bad origin: the host must have 1 to 1024 characters, none of them /, ?, #, @ or white space'
  return undefined
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
