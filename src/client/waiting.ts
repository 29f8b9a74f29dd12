/** Waiting as the client does it: abortable sleeps, back-off, `Retry-After`. */

const BACKOFF_MS = { base: 500, cap: 8_000 }
/** A server's `Retry-After` is honoured up to this many seconds. */
const MAX_RETRY_AFTER_SECONDS = 60

/**
 * One signal for the call: any of `signals`, or `timeoutMs` passing (a `TimeoutError`). The time
 * limit is a timer of the call's own, held until `dispose()`, rather than `AbortSignal.timeout`:
 * a signal that only `AbortSignal.any` refers to can be collected before it fires (Node 20,
 * nodejs/node#57736), and the limit would then be lost.
 */
export function callSignal (signals: Array<AbortSignal | undefined>, timeoutMs: number | undefined): { signal: AbortSignal, dispose: () => void } {
  const timeout = new AbortController()
  const timer = timeoutMs === undefined
    ? undefined
    : setTimeout(() => timeout.abort(new DOMException('The operation timed out.', 'TimeoutError')), timeoutMs)
  const signal = AbortSignal.any([...signals.filter((signal): signal is AbortSignal => signal !== undefined), timeout.signal])
  return { signal, dispose: () => { clearTimeout(timer) } }
}

/** `promise`, or a rejection with the signal's reason as soon as it aborts (then `onAbort`). */
export async function untilAborted<T> (promise: Promise<T>, signal: AbortSignal, onAbort: () => void): Promise<T> {
  return await new Promise<T>((resolve, reject) => {
    const abort = (): void => {
      onAbort()
      reject(signal.reason)
    }
    signal.addEventListener('abort', abort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort))
  })
}

export async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) throw signal.reason
  if (ms <= 0) return
  await new Promise<void>((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', done)
      resolve()
    }, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}

/** Exponential, capped, with equal jitter (half fixed, half random) so that clients spread out. */
export function backoffMs (attempt: number): number {
  const ms = Math.min(BACKOFF_MS.cap, BACKOFF_MS.base * 2 ** attempt)
  return ms / 2 + Math.random() * ms / 2
}

// RFC 9110 §10.2.3: delay-seconds (digits only) or an HTTP-date (IMF-fixdate, or the two
// obsolete forms); anything else (`-5`, `1.5`, `soon`) is not a Retry-After at all.
const DELAY_SECONDS = /^\d{1,10}$/
const HTTP_DATE = /^(?:[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT|[A-Z][a-z]+, \d{2}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} GMT|[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4})$/

function gmt (date: string): string {
  return date.endsWith(' GMT') ? date : `${date} GMT`
}

/**
 * `Retry-After` in ms, at most a minute; `fallback` when absent or not a valid value. A date in
 * the past, or `0`, is 0: callers put their own floor under it.
 */
export function retryAfterMs (response: Response, fallback: number): number {
  const value = response.headers.get('retry-after')?.trim()
  if (value === undefined) return fallback
  let seconds: number
  if (DELAY_SECONDS.test(value)) seconds = Number(value)
  // HTTP dates are GMT: the asctime form names no zone, and Date.parse would read local time.
  else if (HTTP_DATE.test(value) && !Number.isNaN(Date.parse(gmt(value)))) seconds = (Date.parse(gmt(value)) - Date.now()) / 1000
  else return fallback
  return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(0, seconds)) * 1000
}
