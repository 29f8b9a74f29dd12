import { randomUUID } from 'node:crypto'

// Lower-case UUID v4 only: 122 random bits from the CSPRNG. Anything else (upper case,
// truncated, padded, another version) is rejected before it can reach a store.
const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

/** A new job id: a random UUID v4 (122 bits from `crypto`). */
export function newJobId (): string {
  return randomUUID()
}

/** Whether `value` is a well-formed job id. Cheap; call it before every store access. */
export function isJobId (value: unknown): value is string {
  return typeof value === 'string' && JOB_ID.test(value)
}
