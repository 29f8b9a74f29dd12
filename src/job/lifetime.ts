/** A route's timing, as the job carries it. */
export interface JobTiming {
  waitSeconds: number
  timeoutSeconds: number
  maxAttempts: number
}

/**
 * When an accepted job's record expires while it has no result: only after every attempt could
 * have run (each up to its timeout plus a lapsed lease) and its result been read. Completion
 * then sets the result's own expiry ({@link resultExpiry}).
 */
export function pendingExpiry (now: number, timing: JobTiming, leaseSeconds: number, resultTtlSeconds: number): number {
  return now + (resultTtlSeconds + timing.maxAttempts * (timing.timeoutSeconds + leaseSeconds)) * 1000
}

/** When a final response (a result, an error, a cancellation) expires. */
export function resultExpiry (now: number, resultTtlSeconds: number): number {
  return now + resultTtlSeconds * 1000
}
