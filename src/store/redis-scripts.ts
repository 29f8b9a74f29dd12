import type { Redis } from 'ioredis'
import { ANNOUNCED_FIELDS, RECORD_FIELDS } from './redis-records.js'

// Every transition of a job, each one Lua script: Redis runs a script atomically, so the
// condition and the write cannot be separated by another client's write. Each script spells
// a rule of core/job-state.ts, with `now` from the plugin's clock (ARGV[1]): the store and the
// plugin agree on what now is, and a record from `exp` on counts as gone whether or not Redis
// has deleted it yet (PEXPIREAT deletes it on the server's time).
//
// Redis deletes a record a minute after its expiry (`deleteAt`): the record's own expiry decides,
// on the plugin's clock, so a server clock up to a minute ahead of the app's never deletes a live
// record. One further ahead deletes each record that much before its expiry (a result its client
// has yet to read, say): the clocks must agree (docs/guarantees.md, Clocks).
//
// ioredis resends a command whose answer a dropped connection lost: the writes that would then
// find their own effect and refuse (create, complete, cancel) carry a nonce that recognises it.

// Every script begins with a write that changes nothing (a field that never exists): a node
// that is a replica now (a connection still on the primary that a failover demoted) refuses it
// with READONLY before the script reads anything, so the connection moves to the new primary
// (redis-client.ts) and the script runs there. Without it, a script that ends on what it read (a
// claim finding no job on a replica that lags) would answer from stale data: a message dropped
// as the job's, unknown, and the job lost.
const PRELUDE = `
redis.call('HDEL', KEYS[1], '-')
local function live(key, now)
  local e = redis.call('HGET', key, 'exp')
  return e ~= false and tonumber(e) > tonumber(now)
end
local RECORD = {${RECORD_FIELDS.map(field => `'${field}'`).join(', ')}}
local ANNOUNCED = {${ANNOUNCED_FIELDS.map(field => `'${field}'`).join(', ')}}
-- Tells every process that watches: the job's id and its record but the response, so that a
-- waiting request follows the job without reading it; only a finished job's response is read.
-- Returns what it told (the record's JSON).
local function announce(channel, id, key)
  if channel == '' then return end
  local record = cjson.encode(redis.call('HMGET', key, unpack(ANNOUNCED)))
  redis.call('PUBLISH', channel, id .. ' ' .. record)
  return record
end
`

/** The scripts: KEYS[1] is the job's (or the key's) hash; ARGV[1] is now. */
const SCRIPTS = {
  // ARGV: now, deleteAt, nonce, field, value, ... → 1 created, 0 a live job has the id.
  create: `
if live(KEYS[1], ARGV[1]) then
  if redis.call('HGET', KEYS[1], 'cn') == ARGV[3] then return 1 end
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'cn', ARGV[3], unpack(ARGV, 4))
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1`,
  // ARGV: now, jobId, fingerprint, expiresAt, deleteAt → the reservation that holds the key.
  reserveKey: `
if live(KEYS[1], ARGV[1]) then return redis.call('HMGET', KEYS[1], 'job', 'fp', 'exp') end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'job', ARGV[2], 'fp', ARGV[3], 'exp', ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
return {ARGV[2], ARGV[3], ARGV[4]}`,
  // ARGV: now, jobId, expiresAt, deleteAt → 1 when the key named the job and now expires with its result.
  expireKey: `
if not live(KEYS[1], ARGV[1]) or redis.call('HGET', KEYS[1], 'job') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'exp', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1`,
  // ARGV: now, owner, leaseUntil, digest ('' for none), channel, id →
  // {0} gone, {2} another message, {3, record...} not claimable, {1, attempt, request} claimed.
  claim: `
if not live(KEYS[1], ARGV[1]) then return {0} end
local s = redis.call('HMGET', KEYS[1], 'st', 'lease', 'md', 'own', 'att')
if s[3] and s[3] ~= ARGV[4] then return {2} end
local now = tonumber(ARGV[1])
if not (s[1] == 'pending' or (s[1] == 'running' and tonumber(s[2] or '0') < now)) then
  -- A resent claim finds its own lease: taking it as refused would cost the job an attempt.
  if s[1] == 'running' and s[4] == ARGV[2] then return {1, s[5], redis.call('HGET', KEYS[1], 'req')} end
  local r = redis.call('HMGET', KEYS[1], unpack(RECORD))
  return {3, unpack(r, 1, #RECORD)}
end
local attempt = redis.call('HINCRBY', KEYS[1], 'att', 1)
redis.call('HSET', KEYS[1], 'st', 'running', 'own', ARGV[2], 'lease', ARGV[3])
announce(ARGV[5], ARGV[6], KEYS[1])
return {1, attempt, redis.call('HGET', KEYS[1], 'req')}`,
  // ARGV: now, owner, field, value, channel ('' to stay quiet), id → 1 when the owner holds the claim.
  owned: `
if not live(KEYS[1], ARGV[1]) then return 0 end
local s = redis.call('HMGET', KEYS[1], 'st', 'own')
if s[1] ~= 'running' or s[2] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
announce(ARGV[5], ARGV[6], KEYS[1])
return 1`,
  // ARGV: now, owner ('' for a cancellation: anyone while unfinished), response, expiresAt,
  // nonce, channel, id, deleteAt → {1, key digest, record JSON} ended (no JSON when a resent
  // command finds its own effect), {0} not.
  end: `
if not live(KEYS[1], ARGV[1]) then return {0} end
local s = redis.call('HMGET', KEYS[1], 'st', 'own', 'en', 'kd')
if s[1] == 'done' then
  if s[3] == ARGV[5] then return {1, s[4]} end
  return {0}
end
if not s[1] or (ARGV[2] ~= '' and (s[1] ~= 'running' or s[2] ~= ARGV[2])) then return {0} end
redis.call('HSET', KEYS[1], 'st', 'done', 'res', ARGV[3], 'exp', ARGV[4], 'en', ARGV[5])
redis.call('HDEL', KEYS[1], 'own', 'lease', 'req')
redis.call('PEXPIREAT', KEYS[1], ARGV[8])
return {1, s[4], announce(ARGV[6], ARGV[7], KEYS[1])}`,
  // ARGV: channel, id, now → the digest of the job's idempotency key, if it has one. A keyed
  // job leaves a tombstone (no status: read as gone; live: its id cannot be created again) until
  // its key is released, so that a request that found the key naming this job does not create
  // it again in between; a retried delete finds the key's digest there.
  delete: `
local kd = redis.call('HGET', KEYS[1], 'kd')
redis.call('DEL', KEYS[1])
if kd then
  local exp = tonumber(ARGV[3]) + 60000
  redis.call('HSET', KEYS[1], 'exp', exp, 'kd', kd)
  redis.call('PEXPIREAT', KEYS[1], exp + 60000)
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return kd`,
  // ARGV: jobId → 1 when the key named the job and is free now.
  releaseKey: `
if redis.call('HGET', KEYS[1], 'job') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1`
} as const

export type ScriptName = keyof typeof SCRIPTS

/** When Redis deletes what expires at `expiresAt`: a minute later (see above). */
export function deleteAt (expiresAt: number): number {
  return expiresAt + 60_000
}

type ScriptArg = string | number | Buffer
type Scripted = Record<string, (...args: ScriptArg[]) => Promise<unknown>>

const defined = new WeakSet<Redis>()

/**
 * Runs script `name` on `client` with one key; the reply comes with binary strings as Buffers.
 * ioredis sends each script by its SHA-1 and loads it again where the server lost it.
 */
export async function runScript (client: Redis, name: ScriptName, key: string, args: readonly ScriptArg[]): Promise<unknown> {
  if (!defined.has(client)) {
    for (const [script, lua] of Object.entries(SCRIPTS)) client.defineCommand(`flr_${script}`, { numberOfKeys: 1, lua: PRELUDE + lua })
    defined.add(client)
  }
  return await (client as unknown as Scripted)[`flr_${name}Buffer`]?.(key, ...args)
}
