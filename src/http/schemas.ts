import type { FastifySchema } from 'fastify'

// JSON schemas of what the plugin answers, so that @fastify/swagger documents the async
// endpoints and every long-running route's 202 and 303 without the user writing any of it.
// They serialize the plugin's own JSON bodies too; a stored response is sent as bytes, untouched.

/** A route schema with the fields @fastify/swagger reads (its own types add them when installed). */
type DocumentedSchema = FastifySchema & { summary?: string, description?: string, hide?: boolean }

const statusBody = {
  type: 'object',
  description: 'The job, still pending or running; or done, with its body to fetch from Location',
  required: ['id', 'status', 'location'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    status: { type: 'string', enum: ['pending', 'running', 'done'] },
    statusCode: { type: 'integer', description: 'With status done: the route\'s status; Location is where to fetch the body (S3)' },
    headers: { type: 'object', additionalProperties: true, description: 'With status done and Prefer: respond-async (202): the route\'s headers but set-cookie (sent as this answer\'s own Set-Cookie)' },
    location: { type: 'string', description: 'Where to ask again (relative URL)' },
    progress: {
      type: 'object',
      required: ['fraction'],
      properties: { fraction: { type: 'number', minimum: 0, maximum: 1 }, message: { type: 'string' } }
    }
  }
} as const

const error = fastifyError(['statusCode', 'code', 'error', 'message'])

const prefer = {
  type: 'string',
  description: 'RFC 7240: `respond-async` answers 202 at once; `wait=N` waits at most N seconds'
} as const

/** Fastify's own error shape, as its default error serializer writes it (`code` when the error has one). */
function fastifyError (required: readonly string[]): object {
  return { type: 'object', required, properties: { statusCode: { type: 'integer' }, code: { type: 'string' }, error: { type: 'string' }, message: { type: 'string' } } }
}

/**
 * A schema the plugin adds to a user's route, for a status code the route may also answer with
 * itself: it documents the plugin's answer, and never changes how the route's own answers are
 * serialized. Fastify serializes every answer with that status through it, the route's own
 * bodies and errors too, so it is `anyOf` the plugin's shape (extra members kept), Fastify's
 * error shape (an error reaches the serializer as an object whose fields are not its own: they
 * are named to be written, in Fastify's order), or anything (written as `JSON.stringify` would).
 */
function alongsideTheRoute ({ description, ...shape }: { description: string } & Record<string, unknown>): object {
  return {
    description,
    anyOf: [{ ...shape, additionalProperties: true }, error, fastifyError(['statusCode', 'error', 'message']), {}]
  }
}

/** The answers a long-running route gains besides its own. */
export const interimResponses = {
  202: alongsideTheRoute({ ...statusBody, description: 'Accepted: the job runs on (Prefer: respond-async, or after 18 redirects); see Location and Retry-After. A browser tab navigating gets an HTML waiting page with this status instead of the 303' }),
  303: alongsideTheRoute({ ...statusBody, description: 'See Other: the job runs on; follow Location to wait for its result' })
} as const

/** `GET /async-response/{id}`. */
export const resultSchema: DocumentedSchema = {
  summary: 'The result of a long-running request',
  description: 'Waits for the job, then answers with the response the route gave (any status, headers and body), or redirects to wait again.',
  // Descriptions only, no formats or patterns: a malformed id must get the plugin's own 404,
  // not a validation 400.
  params: { type: 'object', properties: { id: { type: 'string', description: 'The job id (a UUID)' } } },
  querystring: { type: 'object', properties: { hop: { type: 'string', description: 'Redirects so far' } } },
  headers: { type: 'object', properties: { prefer } },
  response: {
    200: { description: "The route's own response (any status code, content type and body); to Prefer: return=minimal, a finished job's status instead ({ id, status: 'done', statusCode, location })" },
    ...interimResponses,
    404: { ...error, description: 'Unknown, expired, malformed, or another caller\'s job' }
  }
}

/** `DELETE /async-response/{id}`. */
export const cancelSchema: DocumentedSchema = {
  summary: 'Cancel a long-running request',
  params: { type: 'object', properties: { id: { type: 'string', description: 'The job id (a UUID)' } } },
  response: {
    204: { description: 'Cancelled: the job answers 409 FST_LONG_RUNNING_JOB_CANCELLED from now on', type: 'null' },
    404: { ...error, description: 'Unknown, expired, malformed, or another caller\'s job' },
    409: { ...error, description: 'The job has already finished' }
  }
}

/**
 * Compilers for the plugin's own routes, whatever the app's (zod's, TypeBox's, ajv options):
 * their schemas document the routes for OpenAPI; the handlers check their input themselves
 * and send small JSON bodies.
 */
export const ownCompilers = {
  validatorCompiler: () => () => true,
  // The properties a schema names, as fast-json-stringify would: Fastify hands an error over
  // as an object whose fields are not its own. An object without the fields the schema requires
  // (the app's error handler sending its own shape) is written as it is.
  serializerCompiler: ({ schema }: { schema: unknown }) => {
    const { properties = {}, required = [] } = schema as { properties?: object, required?: string[] }
    const names = Object.keys(properties)
    return (data: Record<string, unknown>) => JSON.stringify(names.length === 0 || !required.every(name => data[name] !== undefined)
      ? data
      : Object.fromEntries(names.flatMap(name => data[name] === undefined ? [] : [[name, data[name]]])))
  }
}

interface SchemaController { isCustomValidatorCompiler?: boolean, isCustomSerializerCompiler?: boolean }

/**
 * Whether a route will be compiled by Fastify's own JSON Schema compilers, so that the plugin
 * may add JSON Schemas to it. Fastify keeps that in its schema controller, which it does not
 * export: found by its symbol's description; when it cannot be found, the answer is no, and
 * the route is left as it is (only its documentation is poorer).
 */
export function usesDefaultCompilers (instance: object, route: { validatorCompiler?: unknown, serializerCompiler?: unknown }): boolean {
  if (route.validatorCompiler !== undefined || route.serializerCompiler !== undefined) return false
  let controller: SchemaController | undefined
  for (let object: object | null = instance; object !== null && controller === undefined; object = Object.getPrototypeOf(object)) {
    const symbol = Object.getOwnPropertySymbols(object).find(symbol => symbol.description === 'fastify.schemaController')
    if (symbol !== undefined) controller = (instance as Record<symbol, SchemaController>)[symbol]
  }
  return controller !== undefined && controller.isCustomValidatorCompiler === false && controller.isCustomSerializerCompiler === false
}

/** The answers of a route that takes idempotency keys. */
const keyedResponses = {
  409: alongsideTheRoute({ ...error, description: 'FST_LONG_RUNNING_IDEMPOTENCY_CONFLICT: the job of this key still runs (strict idempotency); see Location' }),
  422: alongsideTheRoute({ ...error, description: 'FST_LONG_RUNNING_IDEMPOTENCY_KEY_REUSED: this key came with another request before' })
} as const

/**
 * Adds the interim answers and the `Prefer` header to a long-running route's schema, and the
 * idempotency key header (`keyHeader`) with its answers where the route takes keys, keeping
 * whatever the route declares itself.
 */
export function withInterimSchema (schema: FastifySchema | undefined, keyHeader?: string): FastifySchema {
  const headers = (schema?.headers ?? { type: 'object' }) as { type?: string, properties?: Record<string, unknown> }
  const keyed = keyHeader === undefined
    ? {}
    : { [keyHeader]: { type: 'string', description: 'Idempotency-Key (Structured Field string, or a bare token): a retry with the same key gets the first request\'s job and result; expires with the result' } }
  return {
    ...schema,
    ...(headers.type === 'object' ? { headers: { ...headers, properties: { prefer, ...keyed, ...headers.properties } } } : {}),
    response: { ...interimResponses, ...(keyHeader === undefined ? {} : keyedResponses), ...(schema?.response as object | undefined) }
  }
}
