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

/**
 * The names an options object of type `T` has, written as `{ name: true, ... }`: the compiler
 * refuses a list that misses one of `T`'s names or has one `T` does not, so that the check of
 * unknown names cannot fall behind the type.
 */
export function optionNames<T extends object> (names: Record<keyof T, true>): ReadonlySet<string> {
  return new Set(Object.keys(names))
}

/**
 * The options object itself: anything but an object is refused, and so is a name it does not
 * know (JavaScript has no compiler to catch `waitSecond`), naming the nearest known one.
 * `undefined` is `{}` unless `required`. An unknown name is named as in the other messages:
 * alone, with `owner` saying whose option it is not, or else as `name.key`.
 */
export function optionsObject<T extends object> (value: T | undefined, name: string, known: ReadonlySet<string>, required = false, owner?: string): Partial<T> {
  if (value === undefined && !required) return {}
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidOptionError(name, 'an object', describe(value))
  for (const key of Object.keys(value)) {
    if (known.has(key)) continue
    const got = describe((value as Record<string, unknown>)[key])
    throw owner === undefined
      ? new InvalidOptionError(`${name}.${key}`, `a known option (${nearest(key, known)})`, got)
      : new InvalidOptionError(key, `an option of ${owner} (${nearest(key, known)})`, got)
  }
  return value
}

/** What to say of an unknown name: the known one it was probably meant to be, or them all. */
function nearest (name: string, known: ReadonlySet<string>): string {
  const lower = name.toLowerCase()
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of known) {
    const other = candidate.toLowerCase()
    // A name cut short or run on (`timeout` for `timeoutSeconds`) is as near as a typo.
    const distance = other.startsWith(lower) || lower.startsWith(other) ? 1 : editDistance(lower, other)
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance]
  }
  if (best !== undefined && bestDistance <= Math.max(1, Math.floor(name.length / 3))) return `did you mean \`${best}\`?`
  return `one of ${[...known].map(option => `\`${option}\``).join(', ')}`
}

/** Levenshtein's distance between two strings: the edits (insert, delete, replace) from one to the other. */
function editDistance (a: string, b: string): number {
  const at = (row: number[], j: number): number => row[j] as number // always within the row
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(at(previous, j) + 1, at(row, j - 1) + 1, at(previous, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = row
  }
  return at(previous, b.length)
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
  if (!Array.isArray(value)) throw new InvalidOptionError(name, 'an array of lower-case header names', describe(value))
  // The entry at fault by its index, so that a list of twenty names says which one.
  value.forEach((item: unknown, i) => headerName(item, `${name}[${i}]`))
  return new Set(value as string[])
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
