import type { Test } from 'tap'
import type { Clock, JobStore, StoredResponse } from '../index.js'

/** A new, empty store for each check, on `clock` when given (its expiry, and DynamoDB's `:now`). */
export type MakeStore = (clock?: Clock) => Promise<JobStore>

/**
 * Items a backend holds for a job besides its record (DynamoDB: chunk items of bodies too large
 * for the record's item): `count` them, and say with `outOfLine` that the 900 KiB bodies of the
 * `delete` check must have made some. `delete` must leave none.
 */
export interface StoreResidue {
  count: (id: string) => Promise<number>
  outOfLine: boolean
}

export interface StoreSuite {
  make: MakeStore
  residue: StoreResidue
}

export type StoreCheck = (t: Test, suite: StoreSuite) => Promise<void>

// Checks without a clock of their own keep real time, as the store does without one.

/** An expiry a minute from now. */
export const soon = (): number => Date.now() + 60_000

/** A claim for `owner`, its lease ending in `ms`. */
export const lease = (owner: string, ms = 30_000): { owner: string, leaseUntil: number, now: number } =>
  ({ owner, leaseUntil: Date.now() + ms, now: Date.now() })

/** A response with several `set-cookie` headers and the given body. */
export const response = (body: Buffer): StoredResponse => ({
  statusCode: 201,
  headers: { 'content-type': 'application/octet-stream', 'set-cookie': ['a=1', 'b=2'], 'x-one': 'one' },
  body
})
