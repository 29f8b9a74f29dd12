/** A route's timing, as the job carries it. */
export interface JobTiming {
  waitSeconds: number
  timeoutSeconds: number
  maxAttempts: number
}

/**
 * When an accepted job's record expires while it has no result: only after every attempt could
 * have run (each up to its timeout plus a lapsed lease), and after the last delivery its queue
 * can still make (a redelivery after a crash, a redrive from the dead-letter queue), with time
 * to run it and read its answer. Completion then sets the result's own expiry ({@link resultExpiry}).
 */
export function pendingExpiry (now: number, timing: JobTiming, leaseSeconds: number, resultTtlSeconds: number, deliveryWindowSeconds = 0): number {
  const attempts = timing.maxAttempts * (timing.timeoutSeconds + leaseSeconds)
  const lastDelivery = deliveryWindowSeconds + timing.timeoutSeconds + leaseSeconds
  return now + (resultTtlSeconds + Math.max(attempts, lastDelivery)) * 1000
}

/** When a final response (a result, an error, a cancellation) expires. */
export function resultExpiry (now: number, resultTtlSeconds: number): number {
  return now + resultTtlSeconds * 1000
}
