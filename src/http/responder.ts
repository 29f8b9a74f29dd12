import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import type { FastifyReply, FastifyRequest } from 'fastify'
import {
  IdempotencyConflictError, IdempotencyKeyReusedError, InvalidCarryError, InvalidOptionError, JobCancelledError, JobFinishedError, JobNotFoundError, ResultsUnavailableError
} from '../errors.js'
import { acceptJob, acceptKeyed, type AcceptSettings, type NewRequest } from '../job/acceptance.js'
import { keptForRetry } from '../job/unqueued.js'
import { isJobId } from '../core/job-id.js'
import { resultExpiry } from '../job/lifetime.js'
import { errorResponse, storedError } from '../core/error-response.js'
import { reservedCarryKey, type ExternalBody, type JsonValue } from '../core/wire.js'
import type { ResolvedOptions } from '../options.js'
import type { RouteSettings } from '../route-options.js'
import { describe } from '../validate.js'
import type { JobRecord } from '../core/job-state.js'
import { reloadSession } from './cookies.js'
import { keyedRequest, keyOfRequest, REPLAYED_HEADER } from './idempotency.js'
import { basePathOf, HOPS_BEFORE_ACCEPTED, nextHop, parseHop, resultLocation } from './location.js'
import { parsePrefer } from './prefer.js'
import { sendAccepted, sendDone, sendExternal, sendRedirect, sendStored } from './replies.js'
import { prefersWaitingPage, sendWaitingPage } from './waiting-page.js'
import { responseLimitOf, timeLeftMs } from './front-end.js'
import { snapshotOf } from './snapshot.js'
import { acceptingUpload, capturedOf } from './capture.js'
import { drainBody } from './drain.js'
import type { BodyBudget } from './body-budget.js'
import type { Waiter } from './waiter.js'

/**
 * The HTTP side: accepts a long-running request as a job, and answers for it, on the first
 * request and on every `/async-response/:id` after it, with the result, a 303 or a 202.
 */
export class Responder {
  readonly #options: ResolvedOptions & AcceptSettings
  readonly #waiter: Waiter
  /** The prefix of the context the plugin was registered in (`app.register(…, { prefix })`). */
  readonly #prefix: string
  readonly #waits = new Set<AbortController>()
  #stopped = false
  readonly #budget: BodyBudget

  constructor (options: ResolvedOptions & AcceptSettings, waiter: Waiter, prefix: string, budget: BodyBudget) {
    this.#options = options
    this.#waiter = waiter
    this.#prefix = prefix
    this.#budget = budget
  }

  /**
   * Ends every wait at once (at shutdown), and any that would begin later (a request accepted
   * while the app closes): the clients get their 303 and retry elsewhere.
   */
  stopWaiting (): void {
    this.#stopped = true
    for (const wait of this.#waits) wait.abort()
  }

  /** Turns the request into a job (the route's handler already passed hooks and validation). */
  async accept (request: FastifyRequest, reply: FastifyReply, route: RouteSettings): Promise<FastifyReply> {
    await drainBody(request)
    const accepted: NewRequest = {
      id: capturedOf(request)?.id,
      request: snapshotOf(request, this.#options.dropHeaders, this.#carried(request)),
      timing: route,
      binding: await this.#bindingOf(request),
      responseLimit: responseLimitOf(request, this.#options.awsLambdaProperty),
      requestId: String(request.id)
    }
    // Checked before the body was read (`checkKey`): a request that got this far has a usable key, or none.
    const key = keyOfRequest(request)
    // Once the job is in the store (or refused), its bytes are counted there, not at the gate.
    // An uploaded body is the job's from then on (its end removes it), or removed now.
    void acceptingUpload(request)
    let adopted = false
    const admitted = async (): Promise<void> => {
      this.#budget.forget(request)
      await acceptingUpload(request, adopted)
    }
    if (key === undefined) {
      const record = await acceptJob(this.#options, accepted, request.log)
        .then(record => { adopted = true; return record })
        .finally(admitted)
      // The one line that joins this request (its reqId) to the job's own lines (its jobId).
      request.log.info({ jobId: record.id }, 'job accepted')
      return await this.#answer(request, reply, record, 0)
    }
    const keyed = await acceptKeyed(this.#options, accepted, keyedRequest(key, accepted.request, accepted.binding), request.log)
      .then(keyed => { adopted = keyed.kind === 'created'; return keyed }, (error: unknown) => { adopted = keptForRetry(error); throw error })
      .finally(admitted)
    if (keyed.kind === 'mismatch') throw new IdempotencyKeyReusedError()
    const { record } = keyed
    if (keyed.kind === 'created') {
      request.log.info({ jobId: record.id }, 'job accepted')
      return await this.#answer(request, reply, record, 0)
    }
    request.log.info({ jobId: record.id }, 'idempotency key seen before: answering for its job')
    reply.header(REPLAYED_HEADER, 'true')
    if (route.idempotency?.strict === true && record.response === undefined) {
      reply.header('location', this.#location(request, record.id, 0))
      throw new IdempotencyConflictError()
    }
    return await this.#answer(request, reply, record, 0)
  }

  /** `GET /async-response/:id`: the result, or a wait and another 303. */
  async resume (request: FastifyRequest<{ Params: JobParams, Querystring: { hop?: string } }>, reply: FastifyReply): Promise<FastifyReply> {
    reply.header('cache-control', 'no-store')
    const hop = parseHop(request.query.hop)
    const id = idOf(request.params)
    // Malformed ids never reach the store.
    if (!isJobId(id)) throw new JobNotFoundError()
    const record = await this.#options.store.get(id)
    if (record === undefined || !(await this.#mayRead(request, record))) throw new JobNotFoundError()
    return await this.#answer(request, reply, record, hop, true)
  }

  /**
   * `DELETE /async-response/:id`: ends a pending or running job with the final error
   * `FST_LONG_RUNNING_JOB_CANCELLED`; a pending job never starts, a running one's `signal`
   * aborts. Returns the id it cancelled, for the runner of this process.
   */
  async cancel (request: FastifyRequest<{ Params: JobParams }>, reply: FastifyReply): Promise<string> {
    reply.header('cache-control', 'no-store')
    const id = idOf(request.params)
    if (!isJobId(id)) throw new JobNotFoundError()
    const { store, resultTtlSeconds } = this.#options
    const record = await store.get(id)
    if (record === undefined || !(await this.#mayRead(request, record))) throw new JobNotFoundError()
    const cancelled = await store.cancel(id, errorResponse(new JobCancelledError()), resultExpiry(this.#options.clock.now(), resultTtlSeconds))
    if (!cancelled) throw new JobFinishedError()
    request.log.info({ jobId: id }, 'job cancelled')
    // A body an attempt stored outside before the cancellation is never served: it goes now.
    await this.#options.results?.delete(id).catch((error: unknown) => request.log.warn({ err: error, jobId: id }, 'removing the cancelled job\'s result bodies failed; the bucket\'s lifecycle rule will'))
    await reply.code(204).send()
    return id
  }

  /** `resumed`: on `/async-response`, where `Prefer: return=minimal` asks for a finished job's status only. */
  async #answer (request: FastifyRequest, reply: FastifyReply, current: JobRecord, hop: number, resumed = false): Promise<FastifyReply> {
    const prefer = parsePrefer(request.headers.prefer)
    const location = this.#location(request, current.id, hop)
    let record: JobRecord | undefined = current
    // `respond-async` alone answers at once; with `wait=N` it answers once N seconds have passed
    // without a result (RFC 7240 §4.3: "respond asynchronously if it takes longer than N").
    const seconds = prefer.respondAsync && prefer.waitSeconds === undefined
      ? 0
      : Math.min(current.waitSeconds, prefer.waitSeconds ?? Infinity, timeLeftMs(request, this.#options.awsLambdaProperty) / 1000)
    if (seconds > 0 && !this.#stopped) {
      // Ends early when the client goes away or the server shuts down.
      const wait = new AbortController()
      const abort = (): void => wait.abort()
      reply.raw.once('close', abort)
      this.#waits.add(wait)
      try {
        record = await this.#waiter.until(current, seconds * 1000, wait.signal)
      } finally {
        this.#waits.delete(wait)
        reply.raw.off('close', abort)
      }
    }
    if (record === undefined) throw new JobNotFoundError()
    // Whatever this answer is, the job may have changed the session this request loaded.
    await reloadSession(request)
    if (record.response !== undefined) {
      // Before it counts as delivered: the waiting page's poll, which leaves the result to the navigation.
      // Only with respond-async: `return=minimal` alone goes along with a client's 303s (fetch and curl
      // keep request headers), and an OData-style client that always sends it must still get its result.
      if (resumed && prefer.respondAsync && prefer.returnMinimal) return await sendDone(reply, record.id, record.response.statusCode, location)
      // The plugin's own final errors (a timeout, a cancellation) go through the app's error
      // handler, as every other error of the app does; the route's own answers go out as stored.
      const error = storedError(record.response)
      // From now on a store short of memory may evict it (the client has what it came for).
      this.#options.store.delivered?.(record.id)
      if (error !== undefined) throw error
      return record.response.external === undefined
        ? await sendStored(reply, record.response)
        : await sendExternal(reply, record.id, record.response, await this.#urlOf(record.response.external, request.method), prefer.respondAsync)
    }
    // A client that had us wait may ask again at once: the next wait is on the server too.
    if (prefer.respondAsync) return await sendAccepted(reply, record, location, true, seconds > 0 ? 0 : 1)
    // A browser tab gets a page with the job's progress instead of a blank chain of 303s.
    if (this.#options.waitingPage && prefersWaitingPage(request.headers)) return await sendWaitingPage(reply, record, location)
    if (hop > 0 && hop % HOPS_BEFORE_ACCEPTED === 0) return await sendAccepted(reply, record, location, false, 1)
    return await sendRedirect(reply, record, location)
  }

  /** A fresh URL of a body in S3, signed now for the request's method: it outlives this answer by `urlTtlSeconds`. */
  async #urlOf (external: ExternalBody, method: string): Promise<string> {
    const { results } = this.#options
    // A worker with `results` and an HTTP side without: the body cannot be handed over.
    if (results === undefined) throw new ResultsUnavailableError()
    return await results.url(external, method === 'HEAD' ? 'HEAD' : 'GET')
  }

  /** Where the next wait for job `id` is, relative, as the client reached this app. */
  #location (request: FastifyRequest, id: string, hop: number): string {
    const prefix = (this.#options.basePath ?? basePathOf(request, this.#options.awsLambdaProperty)) + this.#prefix + this.#options.routePrefix
    return resultLocation(prefix, id, nextHop(hop))
  }

  async #bindingOf (request: FastifyRequest): Promise<string | undefined> {
    const returned = await this.#options.bindTo?.(request)
    if (returned === undefined || returned === null) return undefined
    // JavaScript knows no return type: anything but an id is the app's mistake, named as such.
    if (typeof returned !== 'string' && (typeof returned !== 'number' || !Number.isFinite(returned))) {
      throw new InvalidOptionError('bindTo', 'a function returning a string, a finite number, undefined or null', describe(returned))
    }
    const value = String(returned)
    // Only a digest is stored, never the user id itself; keyed (bindingSecret), so that nobody
    // who reads the store can reverse it with a dictionary of ids.
    const { bindingSecret } = this.#options
    return (bindingSecret === undefined ? createHash('sha256') : createHmac('sha256', bindingSecret)).update(value).digest('base64url')
  }

  async #mayRead (request: FastifyRequest, record: JobRecord): Promise<boolean> {
    if (record.binding === undefined) return true
    const mine = Buffer.from(await this.#bindingOf(request) ?? '')
    const theirs = Buffer.from(record.binding)
    return mine.length === theirs.length && timingSafeEqual(mine, theirs)
  }

  #carried (request: FastifyRequest): Record<string, JsonValue> | undefined {
    if (this.#options.carry === undefined) return undefined
    const value: unknown = this.#options.carry(request)
    let json: string | undefined
    try {
      json = JSON.stringify(value)
    } catch {}
    // Only what survives JSON unchanged can travel: no functions, classes, cycles or undefined.
    const ok = typeof value === 'object' && value !== null && !Array.isArray(value) && json !== undefined && isDeepStrictEqual(JSON.parse(json), value)
    if (!ok) throw new InvalidCarryError(describe(value))
    const reserved = reservedCarryKey(value as Record<string, JsonValue>)
    if (reserved !== undefined) throw new InvalidCarryError(`an object with the key \`${reserved}\`, which names the request's own member`)
    return value as Record<string, JsonValue>
  }
}

/** The id of `/async-response/:id`, or of its wildcard twin that catches ids too long for `:id`. */
export interface JobParams { id?: string, '*'?: string }

function idOf (params: JobParams): string {
  return params.id ?? params['*'] ?? ''
}
