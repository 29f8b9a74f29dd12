import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Calls `operation` until it resolves, `attempts` times at most, waiting 200 ms, 400 ms, 800 ms...
 * between tries; `onRetry` hears each failure that is tried again. For the few writes whose loss
 * costs more than a short wait: a result computed for minutes, the cleanup of a job never queued.
 */
export async function withRetries<T> (operation: () => Promise<T>, attempts: number, onRetry: (error: unknown, attempt: number) => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation()
    } catch (error) {
      if (attempt >= attempts) throw error
      onRetry(error, attempt)
      await sleep(100 * 2 ** attempt)
    }
  }
}
