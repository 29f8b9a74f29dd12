import { checkAdapter } from './validate.js'

/**
 * The source of time for everything the plugin schedules itself: attempt timeouts, worker
 * deadlines, lease renewals and retry delays. The system clock in production; tests pass a fake
 * one (option `clock`) so that a test about a 15-minute timeout takes no time at all.
 */
export interface Clock {
  /** Epoch milliseconds. */
  now (): number
  /** Calls `callback` once after `ms`; the handle goes to {@link Clock.clearTimeout}. */
  setTimeout (callback: () => void, ms: number): unknown
  clearTimeout (handle: unknown): void
}

/** `Date.now` and the global timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: handle => clearTimeout(handle as NodeJS.Timeout)
}

/** A `clock` option: checked for the methods of {@link Clock}, the system clock when absent. */
export function clockOption (value: Clock | undefined, name: string): Clock {
  return checkAdapter(value, name, ['now', 'setTimeout', 'clearTimeout']) ?? systemClock
}

/** Resolves after `ms` on `clock`, or as soon as `signal` aborts. */
export async function sleep (clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal === undefined) {
    await new Promise<void>(resolve => clock.setTimeout(resolve, ms))
    return
  }
  if (signal.aborted) return
  await new Promise<void>(resolve => {
    const done = (): void => {
      clock.clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = clock.setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}
