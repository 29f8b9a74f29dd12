import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { ASYNC_RESPONSE_PATH } from './http/location.js'
import { Poller } from './http/poller.js'
import { Responder, type JobParams } from './http/responder.js'
import { cancelSchema, resultSchema, withInterimSchema } from './http/schemas.js'
import { captureBody } from './http/snapshot.js'
import { Waiter } from './http/waiter.js'
import { isJobRun, RUN_HEADER, RunRegistry, type LongRunningJob } from './job/context.js'
import type { DeliveryLimits } from './job/outcome.js'
import { JobRunner } from './job/runner.js'
import { resolveOptions, resolveRouteOptions, type LongRunningOptions, type LongRunningRouteOptions } from './options.js'
import type { Consumer, Delivery, Disposition, JobQueue } from './queue/queue.js'
import { redeliveryBackoff } from './retry.js'
import type { ResultStore } from './store/store.js'

/** What the plugin adds to the Fastify instance as `app.longRunning`. */
export interface LongRunningDecorator {
  readonly queue: JobQueue
  readonly store: ResultStore
  /**
   * Runs one delivery of a job message and says whether the message may be deleted. For
   * consumers that receive messages themselves (the Lambda handler, a custom worker). Never
   * rejects: a failed delivery comes back after the queue's redelivery back-off.
   */
  handle (delivery: Delivery, limits?: DeliveryLimits): Promise<Disposition>
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The job this request runs as, inside a long-running handler on the worker side; `null` otherwise. */
    longRunning: LongRunningJob | null
  }
  interface FastifyInstance {
    longRunning: LongRunningDecorator
  }
  interface RouteShorthandOptions {
    /** Run this route as a job: `true`, or per-route timing that overrides the plugin's. */
    longRunning?: boolean | LongRunningRouteOptions
  }
}

const longRunningPlugin: FastifyPluginAsync<LongRunningOptions> = async (app, rawOptions) => {
  const options = resolveOptions(rawOptions)
  const { queue, store } = options
  const runs = new RunRegistry()
  const runner = new JobRunner(app, {
    store,
    runs,
    leaseSeconds: options.leaseSeconds,
    redelivery: queue.redelivery ?? redeliveryBackoff(1),
    clock: options.clock,
    onJobEnd: options.onJobEnd
  })
  const poller = new Poller(store, options.pollIntervalMs, app.log)
  const responder = new Responder(options, new Waiter(store, poller.watch.bind(poller)))
  const defaults = { waitSeconds: options.waitSeconds, timeoutSeconds: options.timeoutSeconds, maxAttempts: options.maxAttempts }

  app.decorateRequest('longRunning', null)
  app.decorate('longRunning', {
    queue,
    store,
    handle: async (delivery: Delivery, limits?: DeliveryLimits) => await runner.handle(delivery, limits)
  } satisfies LongRunningDecorator)

  // Marks a replayed request as a job run before any hook registered after the plugin sees it,
  // so that an authentication hook can tell a job run (authenticated at enqueue) from a client.
  // Its log lines carry the job id, and the original request id (`x-request-id`: API Gateway's,
  // through @fastify/aws-lambda) so that a job's logs join the request that queued it.
  // Callback style: this runs on every request of the app, and ordinary ones must pay nothing.
  app.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done: () => void) => {
    if (request.headers[RUN_HEADER] !== undefined) {
      request.longRunning = runs.take(request)
      if (request.longRunning !== null) {
        const requestId = request.headers['x-request-id']
        request.log = request.log.child({ jobId: request.longRunning.id, attempt: request.longRunning.attempt, ...(requestId === undefined ? {} : { requestId }) })
      }
    }
    done()
  })

  app.addHook('onRoute', (route: RouteOptions) => {
    const value = route.longRunning
    if (value === undefined || value === false) return
    // The automatic HEAD route of a GET comes through here too, and becomes a job as well:
    // running a slow handler inside the request just to answer HEAD would defeat the point.
    const timing = resolveRouteOptions(value, `${String(route.method)} ${route.url} longRunning`, defaults)
    const handler = route.handler
    route.preParsing = [...asArray(route.preParsing), captureBody]
    route.schema = withInterimSchema(route.schema)
    // Wrapping the handler (rather than a hook) means every hook, parser and validator of the
    // route has run by the time the job is queued, and none of them runs twice on this side.
    route.handler = function longRunningHandler (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
      if (isJobRun(request)) return handler.call(this, request, reply)
      return responder.accept(request, reply, timing)
    }
  })

  // `:id` is the documented route; its wildcard twin (hidden from OpenAPI) catches ids longer
  // than the router's `maxParamLength`, so that every bad id gets the same 404.
  for (const path of [':id', '*']) {
    const hide = path === '*' ? { hide: true } : {}
    app.get(`${options.routePrefix}${ASYNC_RESPONSE_PATH}/${path}`, { schema: { ...resultSchema, ...hide } },
      async (request: FastifyRequest<{ Params: JobParams, Querystring: { hop?: string } }>, reply) => await responder.resume(request, reply))
    app.delete(`${options.routePrefix}${ASYNC_RESPONSE_PATH}/${path}`, { schema: { ...cancelSchema, ...hide } },
      async (request: FastifyRequest<{ Params: JobParams }>, reply) => {
        runner.cancel(await responder.cancel(request, reply))
        return reply
      })
  }

  let consumer: Consumer | undefined
  app.addHook('onReady', async () => {
    if (!options.consume) return
    consumer = queue.consume(async delivery => await runner.handle(delivery), {
      concurrency: options.concurrency,
      onError: error => app.log.error({ err: error }, 'job delivery failed')
    })
  })
  app.addHook('preClose', async () => {
    responder.stopWaiting()
  })
  app.addHook('onClose', async () => {
    runner.shutdown()
    await consumer?.stop()
    await queue.close?.()
    await store.close?.()
  })
}

function asArray<T> (value: T | T[] | undefined): T[] {
  if (value === undefined) return []
  return Array.isArray(value) ? value : [value]
}

/**
 * The plugin. Register it before the routes it should see; mark routes with `longRunning`.
 *
 * @example
 * import Fastify from 'fastify'
 * import longRunning from 'fastify-long-running'
 *
 * const app = Fastify()
 * await app.register(longRunning, { waitSeconds: 25 })
 * app.post('/report', { longRunning: true }, async (request) => buildReport(request.body))
 */
export const longRunning = fp(longRunningPlugin, { fastify: '5.x', name: 'fastify-long-running' })
