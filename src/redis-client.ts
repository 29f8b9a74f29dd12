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

/**
 * How long a connection waits for any byte while it owes replies before it counts as dead,
 * is dropped and opened again (ioredis's `socketTimeout`). A path that drops every packet (a
 * NAT that forgot the connection, a partition) never tells the socket, and the connections
 * whose commands wait for the server (BullMQ's worker and its blocking reads, the watches'
 * reads) would wait for a reply that never comes, for as long as TCP's retransmissions take
 * (about 15 minutes): the worker would take no job meanwhile, though the server is back.
 * Longer than the longest wait of a command that blocks on purpose (BullMQ blocks for 10 s at
 * most), so that an idle worker is never taken for a dead one.
 */
export const SILENT_SOCKET_MS = 20_000

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
  /** When each connection was last ready, in the order of the 'ready' events (see `#failedOver`). */
  readonly #readyAt = new WeakMap<Redis, number>()
  #readies = 0
  /** The last 'ready' before the connections last moved after a failover. */
  #moved = 0
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
    const reconnectOnError = (error: Error): 2 | false => {
      const verdict = reconnectOnFailover(error)
      if (verdict !== false) this.#failedOver(client)
      return verdict
    }
    // A connection whose commands time out (`commandTimeout`: the ones that fail fast) is
    // dropped after as long without a byte: a new one goes through, or fails fast while the
    // server stays out of reach, where every later command on this one would time out too.
    const socketTimeout = options.commandTimeout ?? SILENT_SOCKET_MS
    const client = new RedisClient(this.#url, { connectTimeout: 5000, socketTimeout, reconnectOnError, ...options })
    client.on('ready', () => { this.#readyAt.set(client, ++this.#readies) })
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

  /**
   * A connection of this adapter met a replica where its primary was (a failover behind the
   * endpoint): its siblings opened as long ago are likely on the same demoted node, where they
   * would go on hearing nothing (the subscriber: a replica that resyncs misses the messages of
   * the meantime) or reading stale records. They reconnect too; the subscriber then subscribes
   * again and reads its watched jobs (redis-watch.ts). A refusal on a connection that was ready
   * before the last such move is that failover's too (a command sent before it moved): the
   * connections made since are on the new primary and stay.
   */
  #failedOver (from: Redis): void {
    if ((this.#readyAt.get(from) ?? 0) <= this.#moved) return
    this.#moved = this.#readies
    for (const client of this.#clients) {
      if (client !== from && client.status === 'ready') client.disconnect(true)
    }
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

/**
 * ioredis's `reconnectOnError` for every connection of the adapters (BullMQ's copies of the
 * queue's connections inherit it: `duplicate()` copies the options). After a failover behind a
 * stable endpoint (a proxy, a sentinel-managed or cloud endpoint) a connection opened before it
 * still talks to the old primary, now a replica, which refuses every write with `READONLY` for
 * as long as the connection lives: reconnecting reaches the new primary, and `2` sends the
 * refused command again there (a connection that fails fast rejects it instead, and the next
 * command goes through). The store's scripts make sure that a write is what a replica refuses
 * first (redis-scripts.ts). `LOADING` (a server reading its data after a restart) likewise: the
 * reconnection's ready check waits until it is done.
 */
export function reconnectOnFailover (error: Error): 2 | false {
  // Redis 7 names a script's refused write `READONLY …`; Redis 6 wraps it (`ERR Error running script … -READONLY …`).
  return /^(READONLY|LOADING) |-READONLY /.test(error.message) ? 2 : false
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
