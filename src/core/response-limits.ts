import type { StoredResponse } from './wire.js'

// The front ends' size rules in one place: what the HTTP side may send back through the front
// end a request came through, and what a worker may therefore store as a deliverable answer.

/** The largest response a job may store: API Gateway's and Lambda's 6 MiB payload limit. */
export const MAX_RESPONSE_BYTES = 6 * 1024 * 1024

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

const TEXT = /^(text\/|application\/(json|xml|javascript)|[^;]*\+(json|xml))/i

/**
 * The size of the Lambda response JSON that @fastify/aws-lambda makes of `response`: the body
 * travels base64-encoded when it is encoded (gzip...) or not text (as `example/lambda.ts`
 * configures it, and as API Gateway needs binary bodies), else as a JSON string. Headers and
 * the envelope's fields are counted as they serialise, with room for the ones the HTTP side
 * adds when it answers (date, content-length, CORS...).
 */
export function lambdaResponseBytes (response: StoredResponse): number {
  const type = String(response.headers['content-type'] ?? '')
  const encoding = String(response.headers['content-encoding'] ?? 'identity')
  const base64 = encoding !== 'identity' || !TEXT.test(type)
  const body = base64
    ? 4 * Math.ceil(response.body.length / 3)
    : Buffer.byteLength(JSON.stringify(response.body.toString('utf8'))) - 2
  const envelope = { statusCode: response.statusCode, headers: response.headers, multiValueHeaders: response.headers, isBase64Encoded: base64, body: '' }
  return Buffer.byteLength(JSON.stringify(envelope)) + body + 1024
}
