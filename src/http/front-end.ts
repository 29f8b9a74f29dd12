import type { FastifyRequest } from 'fastify'
import { ALB_RESPONSE_BYTES, LAMBDA_RESPONSE_BYTES } from '../core/response-limits.js'

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
