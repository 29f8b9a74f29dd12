import type { LongRunningOptions } from '../src/index.js'

/** Reads a numeric environment variable, failing loudly on anything else. */
export function numberFromEnv (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value)) throw new TypeError(`Expected ${name} to be a number, got ${JSON.stringify(raw)}`)
  return value
}

/**
 * The backends named by the environment: `JOBS_QUEUE_URL` and `JOBS_TABLE` both set → SQS and
 * DynamoDB; neither → the embedded default.
 */
export function backendsFromEnv (): Pick<LongRunningOptions, 'queue' | 'store'> {
  const queueUrl = process.env.JOBS_QUEUE_URL
  const tableName = process.env.JOBS_TABLE
  if (queueUrl === undefined && tableName === undefined) return {}
  throw new Error('Set both JOBS_QUEUE_URL and JOBS_TABLE, or neither')
}
