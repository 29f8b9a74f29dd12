import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { requestBlob, requestOf, responseBlob } from '../core/blob.js'
import { clockOption, type Clock } from '../clock.js'
import { JobExistsError, ValueTooLargeError } from '../errors.js'
import { LazyRedis, redisPrefix, redisUrl } from '../redis-client.js'
import { newJobRecord, type JobProgress, type JobRecord } from '../core/job-state.js'
import type { StoredResponse } from '../core/wire.js'
import { number, optionNames, optionsObject } from '../validate.js'
import { announcedRecord, endedRecord, F, newJobFields, RECORD_FIELDS, recordOf, redisKeys, type RedisKeys } from './redis-records.js'
import { deleteAt, runScript, type ScriptName } from './redis-scripts.js'
import { RedisWatch } from './redis-watch.js'
import type { ClaimResult, JobClaim, JobStore, KeyReservation, NewJob } from './store.js'

/** Options of {@link redisStore}. */
export interface RedisStoreOptions {
  /** The server: `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS (Redis ≥ 6.2 or Valkey). */
  url: string
  /**
   * The first part of every key (`{prefix:id}:job`, `{prefix:key:…}`) and of the channel
   * (`prefix:events`): several apps can share a server under different prefixes.
   * @default 'flr'
   */
  prefix?: string
  /**
   * Largest request or response kept, in bytes (a result is at most 6 MiB and its headers; a
   * request as large as the route's `bodyLimit`). A larger one is refused with
   * `FST_LONG_RUNNING_VALUE_TOO_LARGE` (413). Larger results belong in `s3Results`.
   * @default 8388608 (8 MiB)
   */
  maxValueBytes?: number
  /**
   * The source of time for expiry (`now` in every script): pass the plugin's `clock` when you
   * pass one there, so that the store and the plugin agree on what now is.
   * @default the system clock
   */
  clock?: Clock
}

const REDIS_STORE_OPTIONS = optionNames<RedisStoreOptions>({ url: true, prefix: true, maxValueBytes: true, clock: true })

/**
 * The Redis (or Valkey) result store: one hash per job, every transition one Lua script (atomic
 * and conditional exactly as the rules of `core/job-state.ts`), records counted as gone by every
 * read from their expiry on and deleted by Redis a minute later (`PEXPIREAT`). Waiting requests in
 * every process wake the moment a job changes, through pub/sub. `ioredis` is loaded on first use.
 *
 * @example
 * await app.register(longRunning, {
 *   queue: redisQueue({ url: process.env.REDIS_URL! }),
 *   store: redisStore({ url: process.env.REDIS_URL! })
 * })
 */
export function redisStore (options: RedisStoreOptions): JobStore {
  const checked = optionsObject(options, 'redisStore options', REDIS_STORE_OPTIONS, true, 'redisStore')
  return new RedisStore(
    new LazyRedis(redisUrl(checked.url, 'url'), { commandTimeout: 10_000 }),
    redisKeys(redisPrefix(checked.prefix, 'prefix', 'flr')),
    number(checked.maxValueBytes, 'maxValueBytes', 8 * 1024 * 1024, 7 * 1024 * 1024, 512 * 1024 * 1024, true),
    clockOption(checked.clock, 'clock')
  )
}

class RedisStore implements JobStore {
  readonly #redis: LazyRedis
  readonly #keys: RedisKeys
  readonly #maxValueBytes: number
  readonly #clock: Clock
  readonly #watch: RedisWatch

  constructor (redis: LazyRedis, keys: RedisKeys, maxValueBytes: number, clock: Clock) {
    this.#redis = redis
    this.#keys = keys
    this.#maxValueBytes = maxValueBytes
    this.#clock = clock
    // The change feed's reads wait for a server that is away to come back (their own connection,
    // with ioredis's offline queue): waiting requests then resume by themselves.
    let patient: Promise<Redis> | undefined
    this.#watch = new RedisWatch(keys.channel, clock, async () => await redis.open({ maxRetriesPerRequest: null }), async id => {
      patient ??= redis.open({ maxRetriesPerRequest: null, enableAutoPipelining: true })
      return await this.#read(await patient, id)
    }, message => announcedRecord(message, this.#clock.now()))
  }

  async create (job: NewJob): Promise<JobRecord> {
    const record = newJobRecord(job)
    const fields = newJobFields(record, job)
    if (job.request !== undefined) {
      try {
        fields.push(F.request, this.#bounded('request', requestBlob(job.request)) as unknown as string)
      } catch (error) {
        // The key reserved for it names a job that never was: the client's retry with a smaller
        // body would otherwise be a 422 (another request's key) until the reservation expires.
        if (job.key !== undefined) await this.#script('releaseKey', this.#keys.key(job.key), [job.id])
        throw error
      }
    }
    const created = await this.#script('create', this.#keys.job(job.id), [this.#clock.now(), deleteAt(job.expiresAt), randomUUID(), ...fields])
    if (created !== 1) throw new JobExistsError(job.id)
    return record
  }

  async reserveKey (reservation: KeyReservation): Promise<KeyReservation> {
    const held = await this.#script('reserveKey', this.#keys.key(reservation.key), [
      this.#clock.now(), reservation.jobId, reservation.fingerprint, reservation.expiresAt, deleteAt(reservation.expiresAt)
    ]) as Buffer[]
    const [jobId, fingerprint, expiresAt] = held.map(value => value.toString())
    return { key: reservation.key, jobId: jobId as string, fingerprint: fingerprint as string, expiresAt: Number(expiresAt) }
  }

  async get (id: string): Promise<JobRecord | undefined> {
    return await this.#redis.run('HMGET', async client => await this.#read(client, id))
  }

  async #read (client: Redis, id: string): Promise<JobRecord | undefined> {
    return recordOf(id, await client.hmgetBuffer(this.#keys.job(id), ...RECORD_FIELDS), this.#clock.now())
  }

  async getMany (ids: readonly string[]): Promise<Map<string, JobRecord>> {
    // One read per job (auto-pipelined into few round trips): the jobs live in different slots.
    const records = await Promise.all(ids.map(async id => await this.get(id)))
    return new Map(records.flatMap(record => record === undefined ? [] : [[record.id, record]]))
  }

  async claim (id: string, claim: JobClaim): Promise<ClaimResult> {
    const reply = await this.#script('claim', this.#keys.job(id), [
      claim.now, claim.owner, claim.leaseUntil, claim.messageDigest ?? '', this.#keys.channel, id
    ]) as Array<Buffer | number | null>
    const [outcome, ...rest] = reply
    if (outcome === 2) return { claimed: false, mismatch: true }
    if (outcome === 3) {
      const record = recordOf(id, rest as Array<Buffer | null>, claim.now)
      return record === undefined ? { claimed: false } : { claimed: false, record }
    }
    if (outcome !== 1) return { claimed: false }
    const [attempt, request] = rest
    const claimed = { claimed: true as const, attempt: Number(attempt instanceof Buffer ? attempt.toString() : attempt) }
    return request instanceof Buffer ? { ...claimed, request: requestOf(request) } : claimed
  }

  async renew (id: string, owner: string, leaseUntil: number): Promise<boolean> {
    return await this.#script('owned', this.#keys.job(id), [this.#clock.now(), owner, F.leaseUntil, leaseUntil, '', id]) === 1
  }

  async setProgress (id: string, owner: string, progress: JobProgress): Promise<boolean> {
    return await this.#script('owned', this.#keys.job(id), [this.#clock.now(), owner, F.progress, JSON.stringify(progress), this.#keys.channel, id]) === 1
  }

  async complete (id: string, owner: string, response: StoredResponse, expiresAt: number): Promise<boolean> {
    return await this.#end(id, owner, response, expiresAt)
  }

  async cancel (id: string, response: StoredResponse, expiresAt: number): Promise<boolean> {
    return await this.#end(id, '', response, expiresAt)
  }

  /** Stores a final response: by the claim's owner (completion), or by anyone while unfinished (`''`: cancellation). */
  async #end (id: string, owner: string, response: StoredResponse, expiresAt: number): Promise<boolean> {
    const blob = this.#bounded('response', responseBlob(response))
    // Requests waiting here for the job get it with the reply: no read of the response.
    this.#watch.ending(id)
    let record: JobRecord | undefined
    let reply: [number, Buffer | null, Buffer | undefined]
    try {
      reply = await this.#script('end', this.#keys.job(id), [
        this.#clock.now(), owner, blob, expiresAt, randomUUID(), this.#keys.channel, id, deleteAt(expiresAt)
      ]) as typeof reply
      if (reply[0] === 1 && reply[2] !== undefined) record = endedRecord(id, reply[2].toString(), blob, this.#clock.now())
    } finally {
      this.#watch.ended(id, record)
    }
    const [ended, key] = reply
    if (ended !== 1) return false
    // The key lives as long as the result: then the same key is a new request. Its hash is in
    // another slot than the job's, so this is a second write, and best effort: if it fails,
    // the key keeps its longer expiry.
    if (key !== null) await this.#script('expireKey', this.#keys.key(key.toString()), [this.#clock.now(), id, expiresAt, deleteAt(expiresAt)]).catch(() => {})
    return true
  }

  /** Forgets the job and, if it still names the job, its idempotency key: a retry with the key is a new request. */
  async delete (id: string): Promise<void> {
    const key = await this.#script('delete', this.#keys.job(id), [this.#keys.channel, id, this.#clock.now()]) as Buffer | null
    // The key's hash is in another slot: a second write, after the job's (a request that finds
    // the key meanwhile finds the job gone and cannot create it again: see the script).
    if (key !== null) await this.#script('releaseKey', this.#keys.key(key.toString()), [id])
  }

  watch (id: string, listener: (record: JobRecord | undefined) => void): () => void {
    return this.#watch.watch(id, listener)
  }

  async close (): Promise<void> {
    this.#watch.close()
    await this.#redis.close()
  }

  async #script (name: ScriptName, key: string, args: ReadonlyArray<string | number | Buffer>): Promise<unknown> {
    return await this.#redis.run(name, async client => await runScript(client, name, key, args))
  }

  #bounded (what: string, blob: Buffer): Buffer {
    if (blob.length > this.#maxValueBytes) throw new ValueTooLargeError(what, blob.length, this.#maxValueBytes)
    return blob
  }
}
