import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { EndlessResponseError } from '../errors.js'
import { isJobRun } from '../job/context.js'
import { resolveRouteOptions, type RouteSettings } from '../route-options.js'
import type { BodyBudget } from './body-budget.js'
import { checkKey, KEYED_METHODS } from './idempotency.js'
import { ASYNC_RESPONSE_PATH } from './location.js'
import { keepRouteCookies } from './cookies.js'
import { namePreferencesApplied } from './prefer.js'
import { settleUpload } from './capture.js'
import type { JobParams, Responder } from './responder.js'
import { cancelSchema, ownCompilers, resultSchema, usesDefaultCompilers, withInterimSchema } from './schemas.js'

/** What marking the routes tells the plugin: each version a route declares, each route that takes keys. */
export interface FoundRoutes {
  versioned: (version: string) => void
  keyed: (route: string) => void
}

/**
 * Turns every route declared with `longRunning` into one that accepts its requests as jobs,
 * through an `onRoute` hook: its handler runs only in job runs; on the HTTP side the responder
 * answers instead.
 */
export function markLongRunningRoutes (app: FastifyInstance, responder: Responder, budget: BodyBudget, defaults: RouteSettings, found: FoundRoutes): void {
  app.addHook('onRoute', function (this: FastifyInstance, route: RouteOptions) {
    const value = route.longRunning
    if (value === undefined || value === false) return
    const endless = endlessKind(route)
    if (endless !== undefined) throw new EndlessResponseError(`${String(route.method)} ${route.url} is ${endless}; serve it as an ordinary route`)
    const version = (route.constraints as { version?: unknown } | undefined)?.version
    if (typeof version === 'string') found.versioned(version)
    // The automatic HEAD route of a GET comes through here too, and becomes a job as well:
    // running a slow handler inside the request just to answer HEAD would defeat the point.
    const settings = resolveRouteOptions(value, `${String(route.method)} ${route.url} longRunning`, defaults)
    const handler = route.handler
    route.config = { ...route.config, [kLongRunningRoute]: true } as RouteOptions['config']
    const keys = settings.idempotency === undefined ? [] : [checkKey(settings.idempotency)]
    route.preParsing = [...asArray(route.preParsing), ...keys, ...budget.preParsing]
    // Every answer of this route, its hooks' included (a 401 is the app's answer too), says so.
    route.onSend = [...asArray(route.onSend), ...answerHooks, settleUpload]
    // Documentation of the 202/303 answers, in JSON Schema: only where JSON Schema is what the
    // route's compilers read (zod's, say, would refuse it and the app would not start).
    const keyHeader = keyHeaderOf(route, settings)
    if (keyHeader !== undefined) found.keyed(`${String(route.method)} ${route.url}`)
    if (usesDefaultCompilers(this, route)) route.schema = withInterimSchema(route.schema, keyHeader)
    // Wrapping the handler (rather than a hook) means every hook, parser and validator of the
    // route has run by the time the job is queued, and none of them runs twice on this side.
    route.handler = function longRunningHandler (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
      if (isJobRun(request)) return handler.call(this, request, reply)
      return responder.accept(request, reply, settings)
    }
  })
}

const kLongRunningRoute = Symbol('fastify-long-running.route')

/** Whether the request was routed to a long-running route: the only ones a job run may reach. */
export function reachesLongRunningRoute (request: FastifyRequest): boolean {
  return (request.routeOptions.config as unknown as Record<symbol, unknown> | undefined)?.[kLongRunningRoute] === true
}

/**
 * Adds `/async-response/:id` (`GET` and `POST` answer with the result or another wait, `DELETE`
 * cancels; `cancelled` hears the id cancelled, for the runner of this process).
 */
export function addResultRoutes (app: FastifyInstance, routePrefix: string, responder: Responder, cancelled: (id: string) => void, version?: string): void {
  // A client of a versioned route sends `Accept-Version` on every hop (curl and fetch keep it on
  // a redirect), and the router lets no unversioned route answer such a request: each version a
  // long-running route declares gets its own twins of these routes (hidden from OpenAPI).
  const constraints = version === undefined ? {} : { constraints: { version } }
  // `:id` is the documented route; its wildcard twin (hidden from OpenAPI) catches ids longer
  // than the router's `maxParamLength`, so that every bad id gets the same 404.
  // `POST` answers like `GET`: `curl -X POST -L` keeps the method on a 303, and with it the
  // request's `content-type` but not its body: an empty body is then no body at all.
  for (const path of [':id', '*']) {
    const hide = path === '*' || version !== undefined ? { hide: true } : {}
    const url = `${routePrefix}${ASYNC_RESPONSE_PATH}/${path}`
    app.route<{ Params: JobParams, Querystring: { hop?: string } }>({
      method: ['GET', 'POST'],
      url,
      ...constraints,
      schema: { ...resultSchema, ...hide },
      ...ownCompilers,
      onRequest: ignoreEmptyBody,
      onSend: answerHooks,
      handler: async (request, reply) => await responder.resume(request, reply)
    })
    app.delete(url, { ...constraints, schema: { ...cancelSchema, ...hide }, ...ownCompilers, onRequest: ignoreEmptyBody, onSend: answerHooks },
      async (request: FastifyRequest<{ Params: JobParams }>, reply) => {
        cancelled(await responder.cancel(request, reply))
        return reply
      })
  }
}

// After the app's own `onSend` hooks (a route's hooks run after its instance's): what the
// plugin's routes finish on every answer.
const answerHooks = [namePreferencesApplied, keepRouteCookies]

/** What a route that never ends (known from its options) is: @fastify/websocket's, @fastify/sse's SSE-only. */
function endlessKind (route: RouteOptions & { websocket?: unknown, wsHandler?: unknown, sse?: unknown }): string | undefined {
  if (route.websocket === true) return 'a websocket route (websocket: true)'
  // Its upgrades would become jobs too, and no job can hold a socket.
  if (route.wsHandler !== undefined) return 'a websocket route (wsHandler)'
  const { sse } = route
  const only = sse === 'only' || (typeof sse === 'object' && sse !== null && (sse as { kind?: unknown }).kind === 'only')
  return only ? 'an event-stream route (sse: \'only\')' : undefined
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
