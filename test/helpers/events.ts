import { randomUUID } from 'node:crypto'
import type { Message } from '@aws-sdk/client-sqs'
import type { SqsEvent } from '../../src/index.js'

// Event shapes as AWS delivers them (trimmed to what a handler may read, nothing invented).

interface HttpRequest {
  method: string
  path: string
  query?: Record<string, string>
  headers?: Record<string, string>
  body?: Buffer
}

const encode = (body: Buffer | undefined): { body: string | null, isBase64Encoded: boolean } =>
  body === undefined ? { body: null, isBase64Encoded: false } : { body: body.toString('base64'), isBase64Encoded: true }

/** API Gateway REST API (payload v1) through the stage's default endpoint: `/prod/...`. */
export function restEvent (request: HttpRequest, stage = 'prod'): Record<string, unknown> {
  return {
    resource: '/{proxy+}',
    path: request.path,
    httpMethod: request.method,
    headers: { Host: 'abc123.execute-api.eu-west-1.amazonaws.com', 'X-Forwarded-Proto': 'https', ...request.headers },
    multiValueHeaders: {},
    queryStringParameters: request.query ?? null,
    multiValueQueryStringParameters: null,
    pathParameters: { proxy: request.path.slice(1) },
    stageVariables: null,
    requestContext: {
      accountId: '123456789012',
      resourceId: 'abc',
      stage,
      requestId: randomUUID(),
      identity: { sourceIp: '203.0.113.7' },
      resourcePath: '/{proxy+}',
      httpMethod: request.method,
      path: `/${stage}${request.path}`,
      apiId: 'abc123'
    },
    ...encode(request.body)
  }
}

/** API Gateway HTTP API (payload v2) on the `$default` stage. */
export function httpApiEvent (request: HttpRequest): Record<string, unknown> {
  const query = new URLSearchParams(request.query ?? {}).toString()
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: request.path,
    rawQueryString: query,
    headers: { host: 'abc123.execute-api.eu-west-1.amazonaws.com', ...request.headers },
    ...(request.query === undefined ? {} : { queryStringParameters: request.query }),
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.eu-west-1.amazonaws.com',
      http: { method: request.method, path: request.path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'test' },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default'
    },
    ...encode(request.body)
  }
}

/** An Application Load Balancer target group event. */
export function albEvent (request: HttpRequest): Record<string, unknown> {
  return {
    requestContext: { elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/tg/abc' } },
    httpMethod: request.method,
    path: request.path,
    queryStringParameters: request.query ?? {},
    headers: { host: 'alb.example.internal', ...request.headers },
    ...encode(request.body)
  }
}

/** An ALB event from a target group with multi-value headers on: every header and query value is a list. */
export function albMultiValueEvent (request: HttpRequest): Record<string, unknown> {
  const headers = { host: 'alb.example.internal', ...request.headers }
  return {
    requestContext: { elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/tg/abc' } },
    httpMethod: request.method,
    path: request.path,
    multiValueQueryStringParameters: Object.fromEntries(Object.entries(request.query ?? {}).map(([name, value]) => [name, [value]])),
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, [value]])),
    ...encode(request.body)
  }
}

/** An SQS event of these message bodies, or of messages received from the queue. */
export function sqsEvent (messages: Array<string | Message>, receiveCount = 1): SqsEvent {
  return {
    Records: messages.map(message => {
      const received = typeof message === 'string' ? undefined : message
      return {
        messageId: received?.MessageId ?? randomUUID(),
        receiptHandle: received?.ReceiptHandle ?? randomUUID(),
        body: typeof message === 'string' ? message : message.Body ?? '',
        attributes: { ApproximateReceiveCount: received?.Attributes?.ApproximateReceiveCount ?? String(receiveCount), SentTimestamp: String(Date.now()) },
        messageAttributes: {},
        md5OfBody: '',
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:eu-west-1:123456789012:jobs',
        awsRegion: 'eu-west-1'
      }
    })
  }
}

/** A Lambda context whose clock runs out after `ms`. */
export function lambdaContext (ms = 900_000): { getRemainingTimeInMillis: () => number, awsRequestId: string, functionName: string } {
  const deadline = Date.now() + ms
  return { getRemainingTimeInMillis: () => deadline - Date.now(), awsRequestId: randomUUID(), functionName: 'worker' }
}
