import type { FastifyRequest } from 'fastify'

/**
 * The largest Lambda response JSON (the envelope @fastify/aws-lambda builds, body base64 or
 * JSON-escaped inside) that the front end a request came through can return:
 * - Lambda behind API Gateway (REST or HTTP API) or a function URL: 6,291,556 bytes, Lambda's
 *   synchronous invocation payload quota (Lambda Developer Guide, "Lambda quotas");
 * - an Application Load Balancer: 1 MB ("The maximum size of the response JSON that the Lambda
 *   function can send is 1 MB", ELB Guide, "Lambda functions as targets"), counted as 10^6;
 * - no Lambda event (a plain server, a container): none besides the store's own limit.
 */
export const LAMBDA_RESPONSE_BYTES = 6_291_556
export const ALB_RESPONSE_BYTES = 1_000_000

interface LambdaEvent { requestContext?: { elb?: unknown, path?: unknown, http?: { path?: unknown } }, path?: unknown, rawPath?: unknown }
interface LambdaContext { getRemainingTimeInMillis?: () => number }

/**
 * The Lambda event and context `@fastify/aws-lambda` attached to the request (its
 * `decorateRequest`, on by default, under `decorationPropertyName`, `awsLambda` by default: the
 * plugin's option `awsLambdaProperty` must name the same property). Never read from headers,
 * which any client can set.
 */
export function invocationOf (request: FastifyRequest, property = 'awsLambda'): { event?: LambdaEvent, context?: LambdaContext } | undefined {
  const invocation = (request as unknown as Record<string, unknown>)[property]
  return typeof invocation === 'object' && invocation !== null ? invocation : undefined
}

/**
 * How long this request may still wait, in ms, when it runs in a Lambda function: its time
 * left, less a margin to send the 303 before the platform ends the invocation (and the client
 * gets API Gateway's 502 instead). `Infinity` elsewhere.
 */
export function timeLeftMs (request: FastifyRequest, property?: string): number {
  const context = invocationOf(request, property)?.context
  const left = typeof context?.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() : Infinity
  return Math.max(0, left - 1000)
}

/** The limit for this request's answer, from the event `@fastify/aws-lambda` attached to it. */
export function responseLimitOf (request: FastifyRequest, property?: string): number | undefined {
  const event = invocationOf(request, property)?.event
  if (event === undefined || event === null) return undefined
  return event.requestContext?.elb === undefined ? LAMBDA_RESPONSE_BYTES : ALB_RESPONSE_BYTES
}
