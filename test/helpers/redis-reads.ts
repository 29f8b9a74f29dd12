import type { Test } from 'tap'

/**
 * Counts the record reads this process sends to Redis from now until `t` ends: every read of a
 * job's record is an `HMGET` through ioredis's `hmgetBuffer` (the writes are all scripts).
 */
export async function countRedisReads (t: Test): Promise<{ readonly reads: number }> {
  const { Redis } = await import('ioredis')
  const original = Redis.prototype.hmgetBuffer
  const counter = { reads: 0 }
  Redis.prototype.hmgetBuffer = function (this: unknown, ...args: unknown[]) {
    counter.reads += 1
    return (original as (...args: unknown[]) => unknown).apply(this, args)
  } as typeof original
  t.teardown(() => { Redis.prototype.hmgetBuffer = original })
  return counter
}
