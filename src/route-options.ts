/**
 * A route's options (`longRunning: true | { ... }`) and the idempotency settings within them:
 * what a route may override of the plugin's options, and their checks.
 */
import { InvalidOptionError } from './errors.js'
import type { JobTiming } from './job/lifetime.js'
import { describe, headerName, number, optionalBoolean, optionNames, optionsObject } from './validate.js'
import { MAX_ATTEMPTS, MAX_TIMEOUT_SECONDS } from './core/job-limits.js'

/**
 * How a route treats `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header) on POST,
 * PUT, PATCH and DELETE: a request that repeats a key (same route and caller, same method, path,
 * query, content type and body) gets the first request's job instead of a new run.
 */
export interface IdempotencyOptions {
  /** The request header carrying the key (lower case). @default 'idempotency-key' */
  header?: string
  /** Whether a request without a key is refused (`400`). @default false */
  required?: boolean
  /**
   * The draft's strict reading: a retry while the key's job still runs gets `409` with the
   * job's `Location`, instead of waiting for the job as the first request does.
   * @default false
   */
  strict?: boolean
}

/** {@link IdempotencyOptions} after defaults and validation. */
export interface IdempotencySettings {
  header: string
  required: boolean
  strict: boolean
}

/** Timing and idempotency as a route has them: the plugin's, overridden by `longRunning: { ... }`. */
export interface RouteSettings extends JobTiming {
  /** `undefined`: keys are ignored. */
  idempotency: IdempotencySettings | undefined
}

/** Options that a route may override with `longRunning: { ... }`. */
export interface LongRunningRouteOptions {
  /**
   * Longest one HTTP request waits for the result before answering 303 (or 202), in seconds.
   * Keep it under the timeout in front of the app (API Gateway: 29 s).
   * @default 25
   */
  waitSeconds?: number
  /**
   * Longest one attempt of the handler may run; then its `signal` aborts and the job ends
   * with `FST_LONG_RUNNING_JOB_TIMEOUT` (504). At most 42,000 (SQS hides a message for at most
   * 12 hours from its receipt).
   * @default 900
   */
  timeoutSeconds?: number
  /**
   * Attempts before a job whose worker keeps crashing ends with `FST_LONG_RUNNING_ATTEMPTS_EXHAUSTED` (502).
   * A handler that throws is not a crash: its error response is the result.
   * @default 3
   */
  maxAttempts?: number
  /**
   * `Idempotency-Key` handling; `false` ignores the header. A route's object is merged over
   * the plugin's. Keys expire with their job's result (`resultTtlSeconds`).
   * @default true: the header `idempotency-key`, optional, retries wait for the job
   */
  idempotency?: boolean | IdempotencyOptions
}

/** The names of a route's options, for the check of unknown ones. */
const ROUTE_OPTIONS = optionNames<LongRunningRouteOptions>({ waitSeconds: true, timeoutSeconds: true, maxAttempts: true, idempotency: true })
const IDEMPOTENCY_OPTIONS = optionNames<IdempotencyOptions>({ header: true, required: true, strict: true })

export const IDEMPOTENCY_DEFAULTS: IdempotencySettings = { header: 'idempotency-key', required: false, strict: false }

/**
 * Resolves a route's `longRunning` value (`true` or an object) against the plugin's defaults.
 * `where` prefixes option names in error messages (the route, or '' for the plugin's own).
 */
export function resolveRouteOptions (value: unknown, where: string, defaults: RouteSettings): RouteSettings {
  if (value === true) return defaults
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOptionError(where, 'true or an object', describe(value))
  }
  // The plugin's options (where '') hold a route's and more: resolveOptions checks their names.
  const route = where === '' ? value as LongRunningRouteOptions : optionsObject(value as LongRunningRouteOptions, where, ROUTE_OPTIONS, true)
  const name = (option: string): string => where === '' ? option : `${where}.${option}`
  return {
    waitSeconds: number(route.waitSeconds, name('waitSeconds'), defaults.waitSeconds, 0, 900),
    timeoutSeconds: number(route.timeoutSeconds, name('timeoutSeconds'), defaults.timeoutSeconds, 1, MAX_TIMEOUT_SECONDS),
    maxAttempts: number(route.maxAttempts, name('maxAttempts'), defaults.maxAttempts, 1, MAX_ATTEMPTS, true),
    idempotency: resolveIdempotency(route.idempotency, name('idempotency'), defaults.idempotency)
  }
}

function resolveIdempotency (value: unknown, name: string, inherited: IdempotencySettings | undefined): IdempotencySettings | undefined {
  if (value === undefined) return inherited
  if (value === false) return undefined
  const base = inherited ?? IDEMPOTENCY_DEFAULTS
  if (value === true) return base
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidOptionError(name, 'true, false or an object', describe(value))
  const options = optionsObject(value as IdempotencyOptions, name, IDEMPOTENCY_OPTIONS, true)
  return {
    header: options.header === undefined ? base.header : headerName(options.header, `${name}.header`),
    required: optionalBoolean(options.required, `${name}.required`) ?? base.required,
    strict: optionalBoolean(options.strict, `${name}.strict`) ?? base.strict
  }
}
