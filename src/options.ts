import { randomBytes } from 'node:crypto'
import type { FastifyRequest, RegisterOptions } from 'fastify'
import { clockOption, type Clock } from './clock.js'
import { InvalidOptionError } from './errors.js'
import type { JobEndEvent } from './job/outcome.js'
import type { JsonValue } from './core/wire.js'
import { memoryQueue } from './queue/memory-queue.js'
import type { JobQueue } from './queue/queue.js'
import { memoryStore } from './store/memory-store.js'
import type { ResultBodies } from './results/results.js'
import type { JobStore } from './store/store.js'
import { checkAdapter, describe, headerNames, matching, number, optionalBoolean, optionalFunction, optionalSecret, optionNames, optionsObject, pathPrefix } from './validate.js'
import { MAX_LEASE_SECONDS, MAX_RESULT_TTL_SECONDS } from './core/job-limits.js'
import { IDEMPOTENCY_DEFAULTS, resolveRouteOptions, type LongRunningRouteOptions, type RouteSettings } from './route-options.js'

/** What `bindTo` returns for a request: whose job it is, or nobody's. */
export type Binding = string | number | undefined | null

/** Options of the plugin. */
export interface LongRunningOptions extends LongRunningRouteOptions {
  /** Where jobs go. @default memoryQueue(): jobs run in this process */
  queue?: JobQueue
  /** Where job state and results live. @default memoryStore() */
  store?: JobStore
  /**
   * Where result bodies too large for the store or for the front end go (`s3Results({ bucket })`);
   * the client is redirected to them. Without it such results end as `502 FST_LONG_RUNNING_RESPONSE_TOO_LARGE`.
   */
  results?: ResultBodies
  /**
   * Whether this process takes jobs from the queue and runs them.
   * @default true when `queue` is omitted, false otherwise (Lambda consumer or `npm run worker`)
   */
  consume?: boolean
  /**
   * Jobs this process runs at once when it consumes: those it receives and, on a shared queue
   * (SQS), those it accepts and runs itself while a slot is free.
   * @default 10
   */
  concurrency?: number
  /**
   * How long a finished result can be fetched, in seconds. With `results` whose bucket expires
   * bodies (`s3Results`' `expireAfterDays`), at most what that lifecycle keeps.
   * @default 3600
   */
  resultTtlSeconds?: number
  /**
   * Prefix of the `/async-response/:id` route, as registered in Fastify.
   * @default ''
   */
  routePrefix?: string
  /**
   * Path prepended to `Location` when the app is reached under a prefix Fastify does not see
   * (an API Gateway stage, a proxy path). When omitted it is taken from the API Gateway event
   * that `@fastify/aws-lambda` attached to the request, and is empty otherwise.
   */
  basePath?: string
  /**
   * The request property where `@fastify/aws-lambda` puts the Lambda event and context (its
   * `decorationPropertyName`; keep its `decorateRequest` on). From it come the API Gateway stage
   * for `Location`, the front end's response limit and the invocation's time left.
   * @default 'awsLambda'
   */
  awsLambdaProperty?: string
  /**
   * Binds each job to its caller: the value computed for the request that created the job must
   * equal the value for every request that reads it, or the reader gets the same 404 as for an
   * unknown id. Typically the user id set by an authentication hook: a string or a number
   * (a number binds as its decimal string); `undefined` or `null` binds nothing.
   */
  bindTo?: (request: FastifyRequest) => Binding | Promise<Binding>
  /**
   * The key of the digest the store keeps of each `bindTo` value (HMAC-SHA256), at least 32
   * bytes: without it the store holds a plain SHA-256 of the value, which a dictionary of user
   * ids or emails reverses. Every process that accepts or reads jobs needs the same one (on AWS:
   * from Secrets Manager or SSM into the HTTP functions' environment). Changing it makes every
   * stored job unreadable by its caller (404) until it expires.
   * @default a random key per process with the embedded store (its jobs die with the process); none otherwise
   */
  bindingSecret?: string | Buffer
  /**
   * Brings what the HTTP side established into the job: called after all of the route's hooks,
   * just before the job is queued; in the job run each returned key is set on the request before
   * any hook that asks for `request.longRunning` and before the route's `preHandler` hooks and
   * handler. Values must be JSON; they travel in the queue message and the store.
   *
   * @example
   * carry: (request) => ({ user: request.user })
   */
  carry?: (request: FastifyRequest) => Record<string, JsonValue>
  /**
   * At `app.close()`, how long jobs running in this process on an in-process queue (the
   * embedded default) may take to finish, in seconds; requests waiting on them get their result
   * meanwhile. Jobs still running then are stopped (their `signal` aborts). On a queue shared
   * with other processes (SQS) running jobs are handed back at once instead.
   * @default 10
   */
  closeGraceSeconds?: number
  /**
   * Called once a job's final response is stored, in the process that ran it, with its timing
   * (queued, started, ended), attempt and outcome: feed your metrics from here. It must not
   * throw (errors are logged and ignored) and should not block.
   */
  onJobEnd?: (event: JobEndEvent) => void
  /**
   * Request headers never written to the queue or the store (lower-case names), on top of the
   * hop-by-hop ones. For apps that authenticate before enqueue: drop `authorization` and `cookie`,
   * and let the authentication hook skip job runs (`if (request.longRunning) return`).
   * @default []
   */
  dropHeaders?: readonly string[]
  /**
   * How long a long-running request's body may take to arrive, in seconds: beyond it the
   * request gets `408 FST_LONG_RUNNING_BODY_TIMEOUT` and its connection is closed. Fastify sets
   * no request timeout of its own; without one, slow uploads hold sockets and memory at will.
   * @default 60
   */
  bodyTimeoutSeconds?: number
  /**
   * How long a worker's claim on a job lasts without renewal, in seconds. A crashed worker's
   * job can be retried this long after its last renewal; renewals happen every third of it.
   * A job a container runs where it was accepted has its backup message delayed as long.
   * At most 900.
   * @default 30
   */
  leaseSeconds?: number
  /**
   * On a store that cannot notify (DynamoDB): the base of the delivery budget, in milliseconds.
   * A job of age t is read every `pollIntervalMs` − 15 ms + t / 100 (at most every 10 s), so that
   * its result reaches the client within `pollIntervalMs` + 1 % of the job's length, with reads
   * growing with the logarithm of its length. The waiting requests of a process share each read.
   * @default 100
   */
  pollIntervalMs?: number
  /**
   * Whether a browser tab (a request whose `Accept` prefers `text/html`, navigating) gets a small
   * page with the job's progress once a wait ends unfinished, instead of a blank chain of 303s:
   * `202` with `Refresh`, polling the job's status with a script where one may run, then
   * navigating to the result. `false`: tabs follow 303s as every other client does.
   * @default true
   */
  waitingPage?: boolean
  /**
   * The source of time for attempt timeouts, deadlines, lease renewals and retry delays. For
   * tests: a fake clock makes a test about a timeout take no time.
   * @default the system clock
   */
  clock?: Clock
}

/** Options after defaults and validation. */
export interface ResolvedOptions extends RouteSettings {
  queue: JobQueue
  store: JobStore
  results: ResultBodies | undefined
  consume: boolean
  concurrency: number
  resultTtlSeconds: number
  routePrefix: string
  basePath: string | undefined
  awsLambdaProperty: string
  bindTo: ((request: FastifyRequest) => Binding | Promise<Binding>) | undefined
  bindingSecret: Buffer | undefined
  carry: ((request: FastifyRequest) => Record<string, JsonValue>) | undefined
  closeGraceSeconds: number
  dropHeaders: ReadonlySet<string>
  onJobEnd: ((event: JobEndEvent) => void) | undefined
  leaseSeconds: number
  bodyTimeoutSeconds: number
  pollIntervalMs: number
  waitingPage: boolean
  clock: Clock
}

// Fastify hands a plugin the options of `register` itself too (RegisterOptions): not unknown.
const PLUGIN_OPTIONS = optionNames<LongRunningOptions & RegisterOptions>({
  queue: true,
  store: true,
  results: true,
  consume: true,
  concurrency: true,
  resultTtlSeconds: true,
  routePrefix: true,
  basePath: true,
  awsLambdaProperty: true,
  bindTo: true,
  bindingSecret: true,
  carry: true,
  closeGraceSeconds: true,
  onJobEnd: true,
  dropHeaders: true,
  bodyTimeoutSeconds: true,
  leaseSeconds: true,
  pollIntervalMs: true,
  clock: true,
  waitingPage: true,
  waitSeconds: true,
  timeoutSeconds: true,
  maxAttempts: true,
  idempotency: true,
  prefix: true,
  logLevel: true,
  logSerializers: true
})

/** Checks every option, naming the option, what it expects and what it got. */
export function resolveOptions (options: LongRunningOptions): ResolvedOptions {
  optionsObject(options, 'options', PLUGIN_OPTIONS, true, 'fastify-long-running')
  const timing = resolveRouteOptions(options, '', {
    waitSeconds: 25,
    timeoutSeconds: 900,
    maxAttempts: 3,
    idempotency: IDEMPOTENCY_DEFAULTS
  })
  const clock = clockOption(options.clock, 'clock')
  const resultTtlSeconds = number(options.resultTtlSeconds, 'resultTtlSeconds', 3600, 1, MAX_RESULT_TTL_SECONDS, true)
  const results = checkAdapter(options.results, 'results', ['put', 'url', 'delete'])
  // A result whose body the bucket deletes first would answer with a URL of nothing.
  const longest = results?.maxResultTtlSeconds
  if (longest !== undefined && resultTtlSeconds > longest) {
    throw new InvalidOptionError('resultTtlSeconds', `at most ${longest} (the results bucket's lifecycle, \`expireAfterDays\` of \`s3Results\`, deletes bodies sooner)`, describe(resultTtlSeconds))
  }
  return {
    ...timing,
    consume: optionalBoolean(options.consume, 'consume') ?? options.queue === undefined,
    concurrency: number(options.concurrency, 'concurrency', 10, 1, 10_000, true),
    resultTtlSeconds,
    routePrefix: pathPrefix(options.routePrefix, 'routePrefix') ?? '',
    basePath: pathPrefix(options.basePath, 'basePath'),
    awsLambdaProperty: options.awsLambdaProperty === undefined ? 'awsLambda' : matching(options.awsLambdaProperty, 'awsLambdaProperty', /^[A-Za-z_$][\w$]{0,63}$/, 'a property name'),
    bindTo: optionalFunction(options.bindTo, 'bindTo'),
    bindingSecret: optionalSecret(options.bindingSecret, 'bindingSecret') ?? (options.store === undefined ? randomBytes(32) : undefined),
    carry: optionalFunction(options.carry, 'carry'),
    closeGraceSeconds: number(options.closeGraceSeconds, 'closeGraceSeconds', 10, 0, 3600),
    dropHeaders: headerNames(options.dropHeaders, 'dropHeaders'),
    onJobEnd: optionalFunction(options.onJobEnd, 'onJobEnd'),
    leaseSeconds: number(options.leaseSeconds, 'leaseSeconds', 30, 3, MAX_LEASE_SECONDS),
    bodyTimeoutSeconds: number(options.bodyTimeoutSeconds, 'bodyTimeoutSeconds', 60, 1, 3600),
    pollIntervalMs: number(options.pollIntervalMs, 'pollIntervalMs', 100, 10, 60_000),
    waitingPage: optionalBoolean(options.waitingPage, 'waitingPage') ?? true,
    clock,
    // Last, so that no default adapter (and its timers) is made when another option is invalid.
    results,
    queue: checkAdapter(options.queue, 'queue', ['send', 'consume']) ?? memoryQueue({ clock }),
    store: checkAdapter(options.store, 'store', ['create', 'reserveKey', 'get', 'claim', 'renew', 'setProgress', 'complete', 'cancel', 'delete']) ?? memoryStore({ clock })
  }
}
