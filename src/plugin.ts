import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Clock } from './clock.js'
import { EndlessResponseError, InvalidMessageError } from './errors.js'
import { BodyBudget } from './http/body-budget.js'
import { Poller } from './http/poller.js'
import { Responder } from './http/responder.js'
import { addResultRoutes, markLongRunningRoutes, reachesLongRunningRoute } from './http/routes.js'
import { Waiter } from './http/waiter.js'
import { sinkBody } from './job/body-sink.js'
import { RunRegistry, type LongRunningJob } from './job/context.js'
import type { DeliveryLimits } from './job/outcome.js'
import { LocalStarts } from './job/local-start.js'
import { runLogger } from './job/run-log.js'
import { JobRunner } from './job/runner.js'
import { warnAboutEarlierRoutes, warnAboutSharedKeys, warnAboutUnsharedStore } from './warnings.js'
import { resolveOptions, type LongRunningOptions, type ResolvedOptions } from './options.js'
import type { LongRunningRouteOptions } from './route-options.js'
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
  const parts = buildParts(app, options)
  decorate(app, options, parts)
  addRunHook(app, parts.runs)
  const { waitSeconds, timeoutSeconds, maxAttempts, idempotency } = options
  const cancelled = (id: string): void => { parts.runner.cancel(id) }
  const versions = new Set<string>()
  const keyed: string[] = []
  markLongRunningRoutes(app, parts.responder, parts.budget, { waitSeconds, timeoutSeconds, maxAttempts, idempotency }, {
    versioned: version => {
      if (versions.has(version)) return
      versions.add(version)
      addResultRoutes(app, options.routePrefix, parts.responder, cancelled, version)
    },
    keyed: route => keyed.push(route)
  })
  warnAboutSharedKeys(app, options, keyed)
  warnAboutUnsharedStore(app, rawOptions, options)
  addResultRoutes(app, options.routePrefix, parts.responder, cancelled)
  addLifecycle(app, options, parts)
}

/** The plugin's working parts, made once per registration. */
interface Parts {
  runs: RunRegistry
  runner: JobRunner
  local: LocalStarts | undefined
  budget: BodyBudget
  responder: Responder
}

function buildParts (app: FastifyInstance, options: ResolvedOptions): Parts {
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
  const budget = new BodyBudget(store.memory, options.clock, options.bodyTimeoutSeconds, options.results)
  const responder = new Responder({ ...options, local }, new Waiter(store, poller.watch.bind(poller), options.clock), app.prefix, budget)
  return { runs, runner, local, budget, responder }
}

function decorate (app: FastifyInstance, options: ResolvedOptions, { runs, runner }: Parts): void {
  const { queue, store } = options
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
}

/**
 * Resolves the run marker of every request (so that its header never reaches a later hook),
 * and gives a job run's log lines the job id and the original request id (`x-request-id`:
 * API Gateway's, through @fastify/aws-lambda), so that a job's logs join the request that
 * queued it. Callback style: this runs on every request of the app; ordinary ones pay nothing.
 */
function addRunHook (app: FastifyInstance, runs: RunRegistry): void {
  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void) => {
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
      const joined = { ...(requestId === undefined ? {} : { requestId }), ...(run.queuedBy === undefined ? {} : { queuedBy: run.queuedBy }) }
      request.log = runLogger(request.log.child({ jobId: job.id, attempt: job.attempt, ...joined }), job.signal)
      // Fastify's error handler and its request-completed line write through the reply's logger.
      reply.log = request.log
      reply.hijack = refuseHijack
      // A job replays a request that a long-running route accepted, and only reaches such routes,
      // however the app's routes changed since (or whatever a message said).
      if (!reachesLongRunningRoute(request)) {
        done(new InvalidMessageError(`${request.method} ${request.url} reaches no long-running route`))
        return
      }
    }
    done()
  })
}

// A hijacking route writes to the socket itself, and a job run has none: its headers and its end
// would be lost, so the call fails with a clear error, which the app's error handler answers.
function refuseHijack (): never {
  throw new EndlessResponseError('reply.hijack() in a job run writes to a socket the job does not have')
}

/** Starts consuming once the app is ready, and at close lets jobs finish or hands them back. */
function addLifecycle (app: FastifyInstance, options: ResolvedOptions, { runner, local, responder }: Parts): void {
  const { queue, store } = options
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
  // Fastify gives each close hook `pluginTimeout` (10 s by default) before close fails with
  // AVV_ERR_READY_TIMEOUT: the grace ends a second before that, whatever `closeGraceSeconds` says.
  const { pluginTimeout } = app.initialConfig
  const graceMs = pluginTimeout === undefined || pluginTimeout <= 0
    ? options.closeGraceSeconds * 1000
    : Math.max(0, Math.min(options.closeGraceSeconds * 1000, pluginTimeout - 1000))
  app.addHook('preClose', async () => {
    if (settles) await runner.settle(graceMs)
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
