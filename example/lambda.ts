import awsLambdaFastify from '@fastify/aws-lambda'
import { createSqsHandler } from '../src/index.js'
import { buildApp } from './app.js'
import { backendsFromEnv, numberFromEnv } from './backends.js'

// The example on AWS Lambda. One app, two entry points: `handler` behind API Gateway (REST or
// HTTP API) or an ALB, and `worker` on the jobs queue's event source mapping.
const app = await buildApp(
  { ...backendsFromEnv(), waitSeconds: numberFromEnv('WAIT_SECONDS', 25) },
  { logger: { level: process.env.LOG_LEVEL ?? 'info' } }
)

/** API Gateway REST, HTTP API (v2) and ALB events. Binary bodies go back base64-encoded. */
export const handler = awsLambdaFastify(app, {
  // ALB target groups with multi-value headers on send and expect `multiValueHeaders` only:
  // set ALB_MULTI_VALUE_HEADERS=true for them, or single-valued headers (Location among them)
  // are lost. With the attribute off, an ALB passes one value per header (one Set-Cookie).
  albMultiValueHeaders: process.env.ALB_MULTI_VALUE_HEADERS === 'true',
  // Everything is binary unless it is text: the example echoes any content type byte-exact.
  // An encoded body (gzip from @fastify/compress) is binary whatever its type: as a UTF-8 string
  // its bytes would be garbled on the way.
  binaryMimeTypes: [],
  enforceBase64: (response) => {
    const encoding = String(response.headers['content-encoding'] ?? 'identity')
    return encoding !== 'identity' || !/^(text\/|application\/(json|xml|javascript))/.test(String(response.headers['content-type'] ?? ''))
  }
})

/** The jobs queue's SQS events; returns `{ batchItemFailures }`. */
export const worker = createSqsHandler(app)

await app.ready()
