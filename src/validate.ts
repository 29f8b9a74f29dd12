import { InvalidOptionError } from './errors.js'

// The ground floor of option checking: every factory (the plugin, the queues, the stores, the
// Lambda consumer) uses these, so that each bad value gets the same kind of message, naming the
// option, what it expects and what it got.

/** Renders a received value for an error message. */
export function describe (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'function') return 'a function'
  if (Array.isArray(value)) return 'an array'
  if (value === null) return 'null'
  if (typeof value === 'object') return 'an object'
  return String(value)
}

/** The options object itself: anything but an object is refused; `undefined` is `{}` unless `required`. */
export function optionsObject<T extends object> (value: T | undefined, name: string, required = false): Partial<T> {
  if (value === undefined && !required) return {}
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidOptionError(name, 'an object', describe(value))
  return value
}

/** A number in `[min, max]` (a whole one when `integer`), or `fallback` when absent. */
export function number (value: unknown, name: string, fallback: number, min: number, max: number, integer = false): number {
  if (value === undefined) return fallback
  const ok = typeof value === 'number' && value >= min && value <= max && (!integer || Number.isInteger(value))
  if (!ok) throw new InvalidOptionError(name, `${integer ? 'an integer' : 'a number'} from ${min} to ${max}`, describe(value))
  return value
}

export function optionalBoolean (value: unknown, name: string): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value
  throw new InvalidOptionError(name, 'a boolean', describe(value))
}

export function optionalFunction<T> (value: T | undefined, name: string): T | undefined {
  if (value === undefined || typeof value === 'function') return value
  throw new InvalidOptionError(name, 'a function', describe(value))
}

/** A string matching `pattern`; `expected` says in words what it must look like. */
export function matching (value: unknown, name: string, pattern: RegExp, expected: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) throw new InvalidOptionError(name, expected, describe(value))
  return value
}

/** A path prefix: empty, or segments of URL path characters, no trailing slash. */
export const PATH_PREFIX = /^(\/[A-Za-z0-9\-._~!$&'()*+,;=:@%]+)*$/

export function pathPrefix (value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined
  return matching(value, name, PATH_PREFIX, "a path like '/prod' (or '') without a trailing slash")
}

const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/

/** One lower-case header name (what Node's `request.headers` is keyed by). */
export function headerName (value: unknown, name: string): string {
  return matching(value, name, HEADER_NAME, 'a lower-case header name')
}

export function headerNames (value: unknown, name: string): ReadonlySet<string> {
  if (value === undefined) return new Set()
  if (!Array.isArray(value) || !value.every(item => typeof item === 'string' && HEADER_NAME.test(item))) {
    throw new InvalidOptionError(name, 'an array of lower-case header names', describe(value))
  }
  return new Set(value)
}

/** Checks that `value` looks like an implementation of a contract (the methods it must have). */
export function checkAdapter<T> (value: T | undefined, name: string, methods: readonly string[]): T | undefined {
  if (value === undefined) return undefined
  const ok = typeof value === 'object' && value !== null &&
    methods.every(method => typeof (value as Record<string, unknown>)[method] === 'function')
  if (!ok) throw new InvalidOptionError(name, `an object with ${methods.join(', ')}`, describe(value))
  return value
}

/** A key for an HMAC: a string (its UTF-8 bytes) or a Buffer, of at least 32 bytes. */
export function optionalSecret (value: unknown, name: string): Buffer | undefined {
  if (value === undefined) return undefined
  const bytes = typeof value === 'string' ? Buffer.from(value) : Buffer.isBuffer(value) ? value : undefined
  if (bytes === undefined || bytes.length < 32) throw new InvalidOptionError(name, 'a string or Buffer of at least 32 bytes', describe(value))
  return bytes
}
