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

interface LambdaEvent { requestContext?: { elb?: unknown } }
interface LambdaContext { getRemainingTimeInMillis?: () => number }

/**
 * How long this request may still wait, in ms, when it runs in a Lambda function: its time
 * left, less a margin to send the 303 before the platform ends the invocation (and the client
 * gets API Gateway's 502 instead). `Infinity` elsewhere.
 */
export function timeLeftMs (request: FastifyRequest): number {
  const context = (request as { awsLambda?: { context?: LambdaContext } }).awsLambda?.context
  const left = typeof context?.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() : Infinity
  return Math.max(0, left - 1000)
}

/** The limit for this request's answer, from the event `@fastify/aws-lambda` attached to it. */
export function responseLimitOf (request: FastifyRequest): number | undefined {
  const event = (request as { awsLambda?: { event?: LambdaEvent } }).awsLambda?.event
  if (event === undefined || event === null) return undefined
  return event.requestContext?.elb === undefined ? LAMBDA_RESPONSE_BYTES : ALB_RESPONSE_BYTES
}
