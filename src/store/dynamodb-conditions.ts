import { JobStatus } from '../core/job-state.js'
import { ATTR, numberValue, stringValue, type Item } from './dynamodb-items.js'
import { names } from './dynamodb-table.js'

/**
 * The job state machine's rules (core/job-state.ts) spelt as DynamoDB condition expressions,
 * all in this one table: each entry names the rule it spells. The store contract runs every
 * (status, owner, lease, expiry) case against the memory store, which calls the rules, and the
 * DynamoDB store, which sends these, and expects the same answers.
 *
 *   create ──► pending ──claim──► running(owner, lease) ──complete(owner)──► done
 *                 │                 │  ▲                                      ▲
 *                 │   lease lapsed  └──┘ claim by the next attempt (attempt + 1)
 *                 └───────────── cancel (anyone, while not done) ─────────────┘
 *
 * `:now` is the plugin's clock (the caller's `now`), never the table's: JavaScript and DynamoDB
 * agree on what now is, and a test's fake clock reaches the conditions too.
 */

/** Not `isExpired`: from `expiresAt` on, a record counts as gone, so no write ever revives it. */
const LIVE = '#exp > :now'

/** One rule as a condition: the expression, the attribute names it uses, and its constant values. */
interface Rule { expression: string, names: string[], values: Item }

export const CONDITIONS = {
  /**
   * `create` and `reserveKey`: the id is free, or its record `isExpired` (an item waiting for
   * TTL, which deletes up to days late, is gone: an idempotency key may create its job again).
   */
  free: {
    expression: `attribute_not_exists(#id) OR NOT (${LIVE})`,
    names: [ATTR.id, ATTR.expiresAt],
    values: {}
  },
  /**
   * `isClaimable`: pending, or running with a lease that ended before `:now`. The timeline
   * behind the lease test: worker A claims with a lease to T and renews it while alive; if A dies,
   * the lease is left at T, and the first claim after T (the message's redelivery) takes over.
   * At T exactly A still holds: `<`, not `<=`, as in the memory store.
   */
  claimable: {
    expression: `attribute_exists(#id) AND ${LIVE} AND (#st = :pending OR (#st = :running AND #lease < :now))`,
    names: [ATTR.id, ATTR.expiresAt, ATTR.status, ATTR.leaseUntil],
    values: { ':pending': stringValue(JobStatus.pending), ':running': stringValue(JobStatus.running) }
  },
  /** `isOwnedBy`: renew, setProgress and complete, by the claim's holder only (`:owner`). */
  owned: {
    expression: `#st = :running AND #own = :owner AND ${LIVE}`,
    names: [ATTR.status, ATTR.owner, ATTR.expiresAt],
    values: { ':running': stringValue(JobStatus.running) }
  },
  /** `isCancellable`: cancel, by anyone while the job is pending or running (a job with no status is a deleted one's tombstone). */
  cancellable: {
    expression: `attribute_exists(#st) AND #st <> :done AND ${LIVE}`,
    names: [ATTR.status, ATTR.expiresAt],
    values: { ':done': stringValue(JobStatus.done) }
  }
} as const satisfies Record<string, Rule>

/** A command's condition parts for `rule` at `now`; merge the command's own names and values in. */
/**
 * `isForeignMessage`, negated, for a claim: the job has no message digest, or the claim's.
 * A claim without one may take only a job without one.
 */
export function sameMessage (digest: string | undefined): Rule {
  return digest === undefined
    ? { expression: 'attribute_not_exists(#md)', names: [ATTR.messageDigest], values: {} }
    : { expression: '(attribute_not_exists(#md) OR #md = :md)', names: [ATTR.messageDigest], values: { ':md': stringValue(digest) } }
}

/** Two rules that must both hold. */
export function both (first: Rule, second: Rule): Rule {
  return { expression: `(${first.expression}) AND ${second.expression}`, names: [...first.names, ...second.names], values: { ...first.values, ...second.values } }
}

export function condition (rule: Rule, now: number): { ConditionExpression: string, ExpressionAttributeNames: Record<string, string>, ExpressionAttributeValues: Item } {
  return {
    ConditionExpression: rule.expression,
    ExpressionAttributeNames: names(...rule.names),
    ExpressionAttributeValues: { ...rule.values, ':now': numberValue(now) }
  }
}
