import type { FastifyInstance } from 'fastify'
import type { LongRunningOptions, ResolvedOptions } from './options.js'

// What the plugin says at startup about a setup that works but not as its author likely meant:
// warnings, not errors, since each can be deliberate.

/** Routes declared before the plugin: their `longRunning` option is never seen. */
export function warnAboutEarlierRoutes (app: FastifyInstance): void {
  const routes = [...app.printRoutes({ commonPrefix: false }).matchAll(/([^\s│├└─]+) \(([A-Z, ]+)\)/g)]
    .map(([, url, methods]) => `${String(methods).replace(', HEAD', '')} ${String(url)}`)
  if (routes.length === 0) return
  app.log.warn({ routes }, 'fastify-long-running loaded after these routes were declared: a longRunning option on them has no effect. Register the plugin first, with await')
}

/**
 * Keyed routes without `bindTo`: a key is then the route's, not a caller's, and anyone who sends
 * another's key (an order id, say) gets that caller's stored answer. Told once the routes are in.
 */
export function warnAboutSharedKeys (app: FastifyInstance, options: ResolvedOptions, keyed: readonly string[]): void {
  if (options.bindTo !== undefined) return
  app.addHook('onReady', async () => {
    if (keyed.length > 0) app.log.warn({ routes: keyed }, 'fastify-long-running: Idempotency-Key is on for these routes and no bindTo binds results to callers: a caller who sends another caller\'s key gets their stored answer. Set bindTo, or idempotency: false')
  })
}

/**
 * A queue other processes take jobs from, with the default store, which only this process sees:
 * their workers would find no job, and nothing would end. JavaScript lets it pass.
 */
export function warnAboutUnsharedStore (app: FastifyInstance, raw: LongRunningOptions, options: ResolvedOptions): void {
  if (raw.store !== undefined || options.queue.inProcess === true) return
  app.log.warn('fastify-long-running: the queue is shared with other processes but the store is the default in-memory one, which they cannot see: their workers will find no job. Give a store they share (dynamoDbStore, redisStore)')
}
