import type { Redis, RedisOptions } from 'ioredis'
import { BackendError } from './errors.js'
import { matching } from './validate.js'

/** `ioredis`'s client class, loaded on first use: apps that never use a Redis adapter never load it. */
export type RedisClass = typeof Redis

export async function loadIoredis (): Promise<RedisClass> {
  const module = await import('ioredis')
  return module.Redis ?? module.default.Redis
}

/** A `url` option: `redis://` or `rediss://` (TLS), user and password in the URL. */
export function redisUrl (value: unknown, name: string): string {
  return matching(value, name, /^rediss?:\/\/\S*$/, 'a redis:// or rediss:// URL (rediss: TLS; user and password in the URL)')
}

/** A key prefix option: the first part of every key and channel name. */
export function redisPrefix (value: unknown, name: string, fallback: string): string {
  return value === undefined ? fallback : matching(value, name, /^[\w.-]{1,64}$/, '1 to 64 letters, digits, `_`, `.` or `-`')
}

/** The warning's code when Redis may evict keys, as Node's `process.on('warning')` sees it. */
export const EVICTION_WARNING = 'FST_LONG_RUNNING_REDIS_EVICTION'

/**
 * Connections to one Redis (or Valkey) server, opened on first use, and the one place where
 * Redis errors become `FST_LONG_RUNNING_BACKEND` (a 503 with `Retry-After`), the client's own
 * error kept as `cause`. Commands fail at once while the server is down (no offline queue):
 * the HTTP side answers 503 rather than keeping its client waiting for a reconnection.
 */
export class LazyRedis {
  readonly #url: string
  readonly #options: RedisOptions
  readonly #clients = new Set<Redis>()
  #main: Promise<Redis> | undefined
  #module: Promise<RedisClass> | undefined
  #checked = false
  /** Counts `close()` calls: a connection opened across one (ioredis still loading) is closed at once. */
  #closes = 0

  constructor (url: string, options: RedisOptions = {}) {
    this.#url = url
    this.#options = options
  }

  /** The shared command connection, once it is ready; a first connection that fails is tried again by the next call. */
  async client (): Promise<Redis> {
    this.#main ??= this.connected({ maxRetriesPerRequest: 1, enableOfflineQueue: false, enableAutoPipelining: true, ...this.#options })
    const main = this.#main
    return await main.catch(error => {
      if (this.#main === main) this.#main = undefined
      throw error
    })
  }

  /** A connection of its own that fails fast like the shared one, once it is ready. */
  async connected (options: RedisOptions): Promise<Redis> {
    const client = await this.open({ ...options, lazyConnect: true })
    try {
      await client.connect()
    } catch (error) {
      this.#clients.delete(client)
      client.disconnect()
      throw error
    }
    return client
  }

  /** A connection of its own (pub/sub, BullMQ's blocking reads) whose commands wait for the server. */
  async open (options: RedisOptions): Promise<Redis> {
    const closes = this.#closes
    this.#module ??= loadIoredis()
    const RedisClient = await this.#module
    // Else it would reconnect for ever, and keep the process alive, after its owner closed.
    if (closes !== this.#closes) throw new Error('Redis connection not opened: the adapter was closed meanwhile')
    const client = new RedisClient(this.#url, { connectTimeout: 5000, ...options })
    // Failures reach the caller of each command; an 'error' event without a listener would
    // only print them again (ioredis logs unhandled ones).
    client.on('error', () => {})
    // The server's eviction policy, read once per adapter on its first connection.
    if (!this.#checked) {
      this.#checked = true
      client.once('ready', () => { void checkEviction(client) })
    }
    this.#clients.add(client)
    return client
  }

  /** Runs `command` on the shared connection; a failure becomes a `BackendError`. */
  async run<T> (what: string, command: (client: Redis) => Promise<T>): Promise<T> {
    try {
      return await command(await this.client())
    } catch (error) {
      throw backendError(what, error)
    }
  }

  async close (): Promise<void> {
    this.#closes += 1
    const clients = [...this.#clients]
    this.#clients.clear()
    this.#main = undefined
    // QUIT lets replies under way arrive; a connection that is not up has none to wait for.
    await Promise.all(clients.map(async client => {
      if (client.status === 'ready') await client.quit().catch(() => client.disconnect())
      else client.disconnect()
    }))
  }
}

/** A Redis failure as `FST_LONG_RUNNING_BACKEND`. */
export function backendError (what: string, error: unknown): BackendError {
  return error instanceof BackendError ? error : new BackendError(`Redis ${what}: ${(error as Error).message}`, { cause: error })
}

/**
 * Warns when the server may evict keys (a `maxmemory-policy` other than
 * `noeviction`): evicted job records, key reservations or queue entries would lose jobs and
 * run others twice. BullMQ warns likewise for its own connections.
 */
async function checkEviction (client: Redis): Promise<void> {
  const info = await client.info('memory').catch(() => '')
  const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1]
  if (policy !== undefined && policy !== 'noeviction') {
    process.emitWarning(
      `Redis's maxmemory-policy is ${policy}: it may evict job records and queue entries under memory pressure. Set maxmemory-policy noeviction (see docs/redis.md).`,
      { code: EVICTION_WARNING }
    )
  }
}
