import { createHash, timingSafeEqual } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { InvalidCarryError, JobCancelledError, JobFinishedError, JobNotFoundError } from '../errors.js'
import { enqueueJob } from '../job/enqueue.js'
import { isJobId } from '../job/id.js'
import { resultExpiry, type JobTiming } from '../job/lifetime.js'
import { errorResponse } from '../job/response.js'
import type { JsonValue } from '../job/wire.js'
import type { ResolvedOptions } from '../options.js'
import { describe } from '../validate.js'
import type { JobRecord } from '../store/store.js'
import { basePathOf, HOPS_BEFORE_ACCEPTED, nextHop, parseHop, resultLocation } from './location.js'
import { parsePrefer } from './prefer.js'
import { sendAccepted, sendRedirect, sendStored } from './replies.js'
import { responseLimitOf, timeLeftMs } from './front-end.js'
import { drainBody, snapshotOf } from './snapshot.js'
import type { Waiter } from './waiter.js'

/**
 * The HTTP side: accepts a long-running request as a job, and answers for it, on the first
 * request and on every `/async-response/:id` after it, with the result, a 303 or a 202.
 */
export class Responder {
  readonly #options: ResolvedOptions
  readonly #waiter: Waiter
  /** The prefix of the context the plugin was registered in (`app.register(…, { prefix })`). */
  readonly #prefix: string
  readonly #waits = new Set<AbortController>()

  constructor (options: ResolvedOptions, waiter: Waiter, prefix: string) {
    this.#options = options
    this.#waiter = waiter
    this.#prefix = prefix
  }

  /** Ends every wait at once (at shutdown): the clients get their 303 and retry elsewhere. */
  stopWaiting (): void {
    for (const wait of this.#waits) wait.abort()
  }

  /** Turns the request into a job (the route's handler already passed hooks and validation). */
  async accept (request: FastifyRequest, reply: FastifyReply, timing: JobTiming): Promise<FastifyReply> {
    await drainBody(request, request.routeOptions.bodyLimit)
    const snapshot = snapshotOf(request, this.#options.dropHeaders, this.#carried(request))
    const record = await enqueueJob(this.#options, {
      request: snapshot,
      timing,
      binding: await this.#bindingOf(request),
      responseLimit: responseLimitOf(request, this.#options.awsLambdaProperty)
    }, request.log)
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
    return await this.#answer(request, reply, record, hop)
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
    await reply.code(204).send()
    return id
  }

  async #answer (request: FastifyRequest, reply: FastifyReply, current: JobRecord, hop: number): Promise<FastifyReply> {
    const prefer = parsePrefer(request.headers.prefer)
    const prefix = (this.#options.basePath ?? basePathOf(request, this.#options.awsLambdaProperty)) + this.#prefix + this.#options.routePrefix
    const location = resultLocation(prefix, current.id, nextHop(hop))
    let record: JobRecord | undefined = current
    if (!prefer.respondAsync) {
      const seconds = Math.min(current.waitSeconds, prefer.waitSeconds ?? Infinity, timeLeftMs(request, this.#options.awsLambdaProperty) / 1000)
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
    if (record.response !== undefined) return await sendStored(reply, record.response)
    if (prefer.respondAsync) return await sendAccepted(reply, record, location, true)
    if (hop > 0 && hop % HOPS_BEFORE_ACCEPTED === 0) return await sendAccepted(reply, record, location, false)
    return await sendRedirect(reply, record, location)
  }

  async #bindingOf (request: FastifyRequest): Promise<string | undefined> {
    const value = await this.#options.bindTo?.(request)
    // Only a digest is stored: the store never holds the user id itself.
    return value === undefined ? undefined : createHash('sha256').update(value).digest('base64url')
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
    return value as Record<string, JsonValue>
  }
}

/** The id of `/async-response/:id`, or of its wildcard twin that catches ids too long for `:id`. */
export interface JobParams { id?: string, '*'?: string }

function idOf (params: JobParams): string {
  return params.id ?? params['*'] ?? ''
}
