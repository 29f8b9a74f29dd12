import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { Clock } from './clock.js'
import { Admission } from './http/admission.js'
import { KEYED_METHODS } from './http/idempotency.js'
import { ASYNC_RESPONSE_PATH } from './http/location.js'
import { Poller } from './http/poller.js'
import { Responder, type JobParams } from './http/responder.js'
import { cancelSchema, ownCompilers, resultSchema, usesDefaultCompilers, withInterimSchema } from './http/schemas.js'
import { captureBody } from './http/snapshot.js'
import { Waiter } from './http/waiter.js'
import { sinkBody } from './job/body-sink.js'
import { isJobRun, RunRegistry, type LongRunningJob } from './job/context.js'
import type { DeliveryLimits } from './job/outcome.js'
import { LocalStarts } from './job/local-start.js'
import { JobRunner } from './job/runner.js'
import { resolveOptions, resolveRouteOptions, type LongRunningOptions, type LongRunningRouteOptions, type RouteSettings } from './options.js'
import type { Consumer, Delivery, Disposition, JobQueue } from './queue/queue.js'
import { redeliveryBackoff } from './retry.js'
import type { JobStore, StoreStats } from './store/store.js'

/** What the plugin adds to the Fastify instance as `app.longRunning`. */
export interface LongRunningDecorator {
  readonly queue: JobQueue
  readonly store: JobStore
  /** The plugin's `clock`: consumers outside the plugin (the Lambda handler) keep time on it too. */
  readonly clock: Clock
  /**
   * Runs one delivery of a job message and says whether the message may be deleted. For
   * consumers that receive messages themselves (the Lambda handler, a custom worker). Never
   * rejects: a failed delivery comes back after the queue's redelivery back-off.
   */
  handle (delivery: Delivery, limits?: DeliveryLimits): Promise<Disposition>
  /**
   * The pressure on this process: jobs waiting in the queue (in-memory queue only), attempts
   * running here, and the memory store's counters (with the embedded default's store only).
   */
  stats (): LongRunningStats
}

/** See {@link LongRunningDecorator.stats}. */
export interface LongRunningStats extends Partial<StoreStats> {
  /** Jobs waiting to run, when the queue knows at once (the in-memory queue). */
  queued?: number
  /** Attempts running in this process. */
  running: number
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
  warnAboutEarlierRoutes(app)
  const { queue, store } = options
  const runs = new RunRegistry()
  const poller = new Poller(store, { baseMs: options.pollIntervalMs, clock: options.clock, log: app.log })
  const runner = new JobRunner(app, {
    store,
    runs,
    leaseSeconds: options.leaseSeconds,
    redelivery: queue.redelivery ?? redeliveryBackoff(1),
    clock: options.clock,
    onJobEnd: options.onJobEnd,
    results: options.results,
    // A worker in this process hands results to the requests waiting here, without a read.
    onStored: poller.completed.bind(poller),
    queue
  })
  // A container consuming a shared queue runs the jobs it accepts itself while it has slots free.
  const local = options.consume && queue.inProcess !== true
    ? new LocalStarts(runner, queue, { concurrency: options.concurrency, leaseSeconds: options.leaseSeconds, clock: options.clock, log: app.log })
    : undefined
  const admission = new Admission(store.memory)
  const responder = new Responder({ ...options, local }, new Waiter(store, poller.watch.bind(poller), options.clock), app.prefix, admission)
  const defaults = { waitSeconds: options.waitSeconds, timeoutSeconds: options.timeoutSeconds, maxAttempts: options.maxAttempts, idempotency: options.idempotency }

  // Resolved lazily, whichever hook asks first: a hook registered before the plugin can tell a
  // job run from a client's request (as @fastify/aws-lambda resolves its event).
  app.decorateRequest('longRunning', { getter (this: FastifyRequest) { return runs.resolve(this) } })
  app.decorate('longRunning', {
    queue,
    store,
    clock: options.clock,
    handle: async (delivery: Delivery, limits?: DeliveryLimits) => await runner.handle(delivery, limits),
    stats: () => {
      const queued = queue.queued?.()
      return { ...(queued === undefined ? {} : { queued }), running: runner.running, ...store.memory?.stats() }
    }
  } satisfies LongRunningDecorator)

  // Resolves the run marker of every request (so that its header never reaches a later hook),
  // and gives a job run's log lines the job id and the original request id (`x-request-id`:
  // API Gateway's, through @fastify/aws-lambda), so that a job's logs join the request that
  // queued it. Callback style: this runs on every request of the app; ordinary ones pay nothing.
  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    if (runs.idle) {
      done()
      return
    }
    const run = runs.runOf(request)
    if (run !== null) {
      const { job } = run
      // Nothing is written before onRequest: every byte of the run's body reaches the attempt uncopied.
      sinkBody(reply.raw, run.body)
      const requestId = request.headers['x-request-id']
      request.log = request.log.child({ jobId: job.id, attempt: job.attempt, ...(requestId === undefined ? {} : { requestId }) })
    }
    done()
  })

  app.addHook('onRoute', function (this: FastifyInstance, route: RouteOptions) {
    const value = route.longRunning
    if (value === undefined || value === false) return
    // The automatic HEAD route of a GET comes through here too, and becomes a job as well:
    // running a slow handler inside the request just to answer HEAD would defeat the point.
    const settings = resolveRouteOptions(value, `${String(route.method)} ${route.url} longRunning`, defaults)
    const handler = route.handler
    route.preParsing = [...asArray(route.preParsing), ...admission.preParsing, captureBody]
    // Documentation of the 202/303 answers, in JSON Schema: only where JSON Schema is what the
    // route's compilers read (zod's, say, would refuse it and the app would not start).
    if (usesDefaultCompilers(this, route)) route.schema = withInterimSchema(route.schema, keyHeaderOf(route, settings))
    // Wrapping the handler (rather than a hook) means every hook, parser and validator of the
    // route has run by the time the job is queued, and none of them runs twice on this side.
    route.handler = function longRunningHandler (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
      if (isJobRun(request)) return handler.call(this, request, reply)
      return responder.accept(request, reply, settings)
    }
  })

  // `:id` is the documented route; its wildcard twin (hidden from OpenAPI) catches ids longer
  // than the router's `maxParamLength`, so that every bad id gets the same 404.
  // `POST` answers like `GET`: `curl -X POST -L` keeps the method on a 303, and with it the
  // request's `content-type` but not its body: an empty body is then no body at all.
  for (const path of [':id', '*']) {
    const hide = path === '*' ? { hide: true } : {}
    const url = `${options.routePrefix}${ASYNC_RESPONSE_PATH}/${path}`
    app.route<{ Params: JobParams, Querystring: { hop?: string } }>({
      method: ['GET', 'POST'],
      url,
      schema: { ...resultSchema, ...hide },
      ...ownCompilers,
      onRequest: ignoreEmptyBody,
      handler: async (request, reply) => await responder.resume(request, reply)
    })
    app.delete(url, { schema: { ...cancelSchema, ...hide }, ...ownCompilers, onRequest: ignoreEmptyBody },
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
      onError: error => app.log.error({ err: error }, 'job delivery failed'),
      ...(local === undefined ? {} : { busyElsewhere: () => local.busy })
    })
    if (local !== undefined) local.onFree = () => consumer?.freed?.()
  })
  // Jobs of an in-process queue die with the process: at close they may finish first, and the
  // requests waiting on them get their results. This happens in preClose, after Fastify began
  // answering new requests 503 and before it waits for the open ones to end. Jobs of a shared
  // queue go back to it at once, and their waiting clients get a 303 at once.
  const settles = queue.inProcess === true && options.consume
  app.addHook('preClose', async () => {
    if (settles) await runner.settle(options.closeGraceSeconds * 1000)
    responder.stopWaiting()
  })
  app.addHook('onClose', async () => {
    runner.shutdown()
    await consumer?.stop()
    // Jobs started here go back to the queue before it closes; only now, so that no long poll
    // of this consumer, cut short by its stop, is under way to take them.
    await local?.settle()
    await queue.close?.()
    await store.close?.()
    await options.results?.close?.()
  })
}

/**
 * Routes already in the router when the plugin loads were declared before its `onRoute` hook
 * existed (before `register`, or after a `register` that was not awaited): a `longRunning`
 * option on them would be silently ignored. Fastify keeps no route options to check, so the
 * plugin names them all, once, at startup.
 */
function warnAboutEarlierRoutes (app: FastifyInstance): void {
  const routes = [...app.printRoutes({ commonPrefix: false }).matchAll(/([^\s│├└─]+) \(([A-Z, ]+)\)/g)]
    .map(([, url, methods]) => `${String(methods).replace(', HEAD', '')} ${String(url)}`)
  if (routes.length === 0) return
  app.log.warn({ routes }, 'fastify-long-running loaded after these routes were declared: a longRunning option on them has no effect. Register the plugin first, with await')
}

/** The idempotency key header a route documents: when it takes keys and has a method they apply to. */
function keyHeaderOf (route: RouteOptions, settings: RouteSettings): string | undefined {
  const keyed = asArray(route.method).some(method => KEYED_METHODS.has(method))
  return keyed ? settings.idempotency?.header : undefined
}

function ignoreEmptyBody (request: FastifyRequest, _reply: FastifyReply, done: () => void): void {
  const { headers } = request
  if (headers['transfer-encoding'] === undefined && (headers['content-length'] ?? '0') === '0') delete headers['content-type']
  done()
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
