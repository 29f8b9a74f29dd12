/** Waiting as the client does it: abortable sleeps, back-off, `Retry-After`. */

const BACKOFF_MS = { base: 500, cap: 8_000 }
/** A server's `Retry-After` is honoured up to this many seconds. */
const MAX_RETRY_AFTER_SECONDS = 60

export function combinedSignal (signals: Array<AbortSignal | undefined>): AbortSignal {
  return AbortSignal.any(signals.filter((signal): signal is AbortSignal => signal !== undefined))
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

/** `Retry-After` (seconds or an HTTP date) in ms, capped; `fallback` when absent or unreadable. */
export function retryAfterMs (response: Response, fallback: number): number {
  const value = response.headers.get('retry-after')
  if (value === null) return fallback
  const seconds = /^\d+$/.test(value.trim()) ? Number(value) : (Date.parse(value) - Date.now()) / 1000
  return Number.isNaN(seconds) ? fallback : Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(0, seconds)) * 1000
}
