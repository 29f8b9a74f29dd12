import type { Test } from 'tap'
import { cancel, claims, completeWhileClaimed, createAndGet, createdClaimed, expiredIdReused, expiredIsGone, onlyItsMessageClaims } from './store-jobs.js'
import { claimCheck, deleteForgets, getMany, responsesRoundTrip } from './store-bodies.js'
import type { MakeStore, StoreCheck, StoreResidue } from './store-fixtures.js'
import { keyFreedByDelete, keyLivesWithResult, racingReservations } from './store-keys.js'
import { stateMachine } from './store-state-machine.js'

const CHECKS: Record<string, StoreCheck> = {
  'create, then get the pending job; unknown ids are undefined; ids are unique': createAndGet,
  'an expired job is gone, whether or not the backend deleted it': expiredIsGone,
  'an idempotency key: of racing reservations exactly one holds, until it expires': racingReservations,
  'a key expires with its job\'s result, completed or cancelled, not with its first expiry': keyLivesWithResult,
  'a deleted job frees the key that names it, and only that one': keyFreedByDelete,
  'an expired job\'s id can be created again (a key whose job expired starts it anew)': expiredIdReused,
  'claims: one live lease at a time; a lapsed lease is taken over with the next attempt': claims,
  'only the message a job was accepted with claims it: any other changes nothing, in every state': onlyItsMessageClaims,
  'a job created claimed runs its first attempt at once: a second claim waits for its lease': createdClaimed,
  'complete only while holding the claim; a done job is never claimed again': completeWhileClaimed,
  'responses up to 6 MiB and empty ones round-trip byte-exact': responsesRoundTrip,
  'a request kept in the store (claim-check) comes back with the claim, byte-exact': claimCheck,
  'cancel ends a pending or running job for good; a finished one stays as it is': cancel,
  'delete forgets the job and everything stored with it, before and after completion': deleteForgets,
  'getMany reads several jobs at once, leaving out unknown ones': getMany,
  'the job state machine: every (status, owner, lease, expiry) case decided as core/job-state.ts rules': stateMachine
}

/**
 * The contract every `JobStore` passes: the memory, DynamoDB and Redis stores run these very
 * checks (records, leases, stale workers, idempotency keys, expiry, bodies up to 6 MiB, the
 * state machine of every status and lease), each as a tap subtest of `t`.
 *
 * `make` returns a new store each time, on `clock` when it is given: pass it to your store's
 * clock option, so that its expiry (and any `now` it sends its backend) keeps the test's time.
 * Without a clock the store keeps real time. `residue` counts the items a store keeps for a job
 * besides its record, so that the suite checks `delete` leaves none.
 *
 * @example
 * import t from 'tap'
 * import { storeContract } from 'fastify-long-running/testing'
 *
 * t.test('my store', async t => {
 *   storeContract(t, async clock => myStore({ table: `contract-${Math.random()}`, clock }))
 * })
 */
export function storeContract (
  t: Test,
  make: MakeStore,
  residue: StoreResidue = { count: async () => 0, outOfLine: false }
): void {
  for (const [name, check] of Object.entries(CHECKS)) t.test(name, async t => { await check(t, { make, residue }) })
}
