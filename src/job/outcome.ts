/**
 * How a job ended, for `onJobEnd`.
 *
 * @example
 * await app.register(longRunning, {
 *   onJobEnd: (job) => metrics.count(`jobs.${job.outcome}`, { ms: job.endedAt - job.startedAt })
 * })
 */
export const JobOutcome = {
  completed: 'completed',
  timedOut: 'timed-out',
  attemptsExhausted: 'attempts-exhausted',
  tooLarge: 'too-large',
  /** The route's answer never ends (`FST_LONG_RUNNING_ENDLESS_RESPONSE`). */
  endless: 'endless',
  /** The route's response stream failed midway (`FST_LONG_RUNNING_RESPONSE_FAILED`). */
  failed: 'failed',
  invalid: 'invalid'
} as const
export type JobOutcome = typeof JobOutcome[keyof typeof JobOutcome]

/** What `onJobEnd` hears once a job's final response is stored (by the process that ran it). */
export interface JobEndEvent {
  id: string
  outcome: JobOutcome
  /** The final response's status code. */
  statusCode: number
  /** The attempt that ended the job. */
  attempt: number
  /** When the HTTP side accepted the job (epoch ms). */
  queuedAt?: number
  /** When this attempt started, and when the job ended (epoch ms). */
  startedAt: number
  endedAt: number
}

/** Limits of one delivery, from the environment that runs it. */
export interface DeliveryLimits {
  /** Epoch ms by which this process must be done with the message (a Lambda's deadline). */
  deadline?: number
}
