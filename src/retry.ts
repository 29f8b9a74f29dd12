import { sleep, type Clock } from './clock.js'

/**
 * The one back-off policy: exponential from `baseMs`, doubling with every try, capped at
 * `maxMs`; with `jitter`, a random point below that (AWS's "full jitter", for calls that many
 * clients retry at once). Each use below names its numbers once, beside the reason for them.
 */
export class Backoff {
  readonly baseMs: number
  readonly maxMs: number
  readonly jitter: boolean

  constructor ({ baseMs, maxMs, jitter = false }: { baseMs: number, maxMs: number, jitter?: boolean }) {
    this.baseMs = baseMs
    this.maxMs = maxMs
    this.jitter = jitter
  }

  /** The wait before try `n + 1` after `n` failed ones (n ≥ 1). */
  delayMs (n: number): number {
    const delay = Math.min(this.maxMs, this.baseMs * 2 ** Math.max(0, n - 1))
    return this.jitter ? delay * Math.random() : delay
  }

  /** {@link delayMs} in seconds, for queue visibility. */
  delaySeconds (n: number): number {
    return this.delayMs(n) / 1000
  }
}

/** The back-offs of this package, each configured here and nowhere else. */
export const backoffs = {
  /**
   * A write whose loss costs more than a short wait (a result computed for minutes, a message
   * for an accepted request, the cleanup of a job never queued): 200, 400, 800 ms...
   */
  write: new Backoff({ baseMs: 200, maxMs: 5_000 }),
  /** Items a DynamoDB batch call left unprocessed (throttling): jittered, at most a second. */
  batch: new Backoff({ baseMs: 50, maxMs: 1_000, jitter: true }),
  /** A failed `ReceiveMessage` of the container worker: try again a second later. */
  receive: new Backoff({ baseMs: 1_000, maxMs: 1_000 })
} as const

/**
 * How often each kind of call is tried, here and nowhere else. Sending a message for an
 * accepted request and each S3 request of an upload: 3 tries (a client or the redelivery waits
 * behind them). Storing a result or removing a job never queued: 4, since losing the write costs
 * more than a short wait (minutes of computing, or a phantom job).
 */
export const retries = {
  send: { attempts: 3, backoff: backoffs.write },
  upload: { attempts: 3, backoff: backoffs.write },
  write: { attempts: 4, backoff: backoffs.write }
} as const

/**
 * Writes tried on while a claim holds: storing a result (`job/finish.ts`) and renewing the lease
 * itself (`job/lease.ts`). The write back-off, but never more than a tenth of the lease apart,
 * so that a store that comes and goes lets one try through before the lease lapses.
 */
export function heldWriteBackoff (leaseSeconds: number): Backoff {
  return new Backoff({ baseMs: backoffs.write.baseMs, maxMs: Math.min(backoffs.write.maxMs, leaseSeconds * 100) })
}

/**
 * Redelivery of a message whose handling failed (the store was down, say): `baseSeconds × 2^(receives − 1)`,
 * at most 15 minutes, so that an outage does not burn through the queue's `maxReceiveCount` in seconds.
 */
export function redeliveryBackoff (baseSeconds: number): Backoff {
  return new Backoff({ baseMs: baseSeconds * 1000, maxMs: 900_000 })
}

/**
 * Calls `operation` until it resolves, `attempts` times at most, waiting `backoff` between
 * tries on `clock`; `onRetry` hears each failure that is tried again, and `retryable` (default: all)
 * picks the failures worth another try. Past `attempts`, a failure is tried again while
 * `beyond` says so (default: never); `signal` cuts a wait short.
 */
export async function withRetries<T> (
  operation: () => Promise<T>,
  options: {
    attempts: number
    backoff?: Backoff
    clock: Clock
    onRetry: (error: unknown, attempt: number) => void
    retryable?: (error: unknown) => boolean
    beyond?: (error: unknown) => boolean
    signal?: AbortSignal
  }
): Promise<T> {
  const { attempts, backoff = backoffs.write, clock, onRetry, retryable = () => true, beyond = () => false, signal } = options
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation()
    } catch (error) {
      if (!retryable(error) || (attempt >= attempts && !beyond(error))) throw error
      onRetry(error, attempt)
      await sleep(clock, backoff.delayMs(attempt), signal)
    }
  }
}
