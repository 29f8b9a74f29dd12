import { mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs'
import dynalite from 'dynalite'
import { createSqsServer } from 'local-aws-sqs'

/** Local SQS (`local-aws-sqs`) and DynamoDB (`dynalite`), on free loopback ports. */
export interface Emulators {
  queueUrl: string
  dlqUrl: string
  tableName: string
  /** The standard AWS SDK variables that point a process at the emulators. */
  env: Record<string, string>
  sqs: SQSClient
  dynamodb: DynamoDBClient
  close (): Promise<void>
}

export interface EmulatorOptions {
  /** The queue's VisibilityTimeout in seconds. @default 30 */
  visibilityTimeout?: number
  /** Receives before a message moves to the DLQ. @default 10 */
  maxReceiveCount?: number
  /** Also an S3 emulator (`s3rver`) with the results bucket, named in `env` (`JOBS_RESULTS_BUCKET`). @default false */
  s3?: boolean
}

const REGION = 'us-east-1'
// s3rver accepts only its own key (and checks signatures with it); the other emulators any.
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }

/**
 * New SDK clients on the emulators named by `env` (as `Emulators.env` gives it); `maxAttempts: 1`
 * turns the SDK's own retries off, for tests that want to see every failure.
 */
export function emulatorClients (env: Record<string, string>, options: { maxAttempts?: number } = {}): { sqs: SQSClient, dynamodb: DynamoDBClient } {
  const config = { region: env.AWS_REGION ?? REGION, credentials: CREDENTIALS, ...options }
  return {
    sqs: new SQSClient({ ...config, endpoint: env.AWS_ENDPOINT_URL_SQS }),
    dynamodb: new DynamoDBClient({ ...config, endpoint: env.AWS_ENDPOINT_URL_DYNAMODB })
  }
}

/** Starts both emulators and creates the contract's resources: the queue, its DLQ, the table. */
export async function startEmulators (options: EmulatorOptions = {}): Promise<Emulators> {
  const sqsServer = await createSqsServer({ port: 0, hostname: '127.0.0.1', emulateQueueCreationLifecycle: false })
  const dynamoServer = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 }) as Server
  const dynamoAnswered = answeredRequests(dynamoServer)
  await new Promise<void>(resolve => dynamoServer.listen(0, '127.0.0.1', resolve))
  const sqsEndpoint = `http://127.0.0.1:${(sqsServer.address() as AddressInfo).port}`
  const dynamoEndpoint = `http://127.0.0.1:${(dynamoServer.address() as AddressInfo).port}`
  const { sqs, dynamodb } = emulatorClients({ AWS_ENDPOINT_URL_SQS: sqsEndpoint, AWS_ENDPOINT_URL_DYNAMODB: dynamoEndpoint })

  const { QueueUrl: dlqUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'jobs-dlq' }))
  const { Attributes: dlq } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))
  const { QueueUrl: queueUrl } = await sqs.send(new CreateQueueCommand({
    QueueName: 'jobs',
    Attributes: {
      VisibilityTimeout: String(options.visibilityTimeout ?? 30),
      MaximumMessageSize: String(256 * 1024),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq?.QueueArn, maxReceiveCount: options.maxReceiveCount ?? 10 })
    }
  }))
  const tableName = 'jobs'
  await dynamodb.send(new CreateTableCommand({
    TableName: tableName,
    AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
    KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
    BillingMode: 'PAY_PER_REQUEST'
  }))

  const s3 = options.s3 === true ? await startS3('results') : undefined
  return {
    queueUrl: queueUrl as string,
    dlqUrl: dlqUrl as string,
    tableName,
    env: {
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_SQS: sqsEndpoint,
      AWS_ENDPOINT_URL_DYNAMODB: dynamoEndpoint,
      JOBS_QUEUE_URL: queueUrl as string,
      JOBS_TABLE: tableName,
      ...s3?.env
    },
    sqs,
    dynamodb,
    async close () {
      sqs.destroy()
      dynamodb.destroy()
      // dynalite closes its database with its server, and throws (uncaught) from a request whose
      // operation starts after that: the requests it is working on are answered first.
      await dynamoAnswered()
      sqsServer.closeAllConnections()
      dynamoServer.closeAllConnections()
      await Promise.all([
        new Promise(resolve => sqsServer.close(resolve)),
        new Promise(resolve => dynamoServer.close(resolve)),
        s3?.close()
      ])
    }
  }
}

/**
 * Resolves, when called, once every request `server` has begun is answered (its `end()` called,
 * even on a gone socket) or was cut before its body was whole (no operation starts then).
 */
function answeredRequests (server: Server): () => Promise<void> {
  let open = 0
  let idle: (() => void) | undefined
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    open += 1
    let done = false
    const settle = (): void => {
      if (done) return
      done = true
      if (--open === 0) idle?.()
    }
    const end = response.end.bind(response) as (...args: unknown[]) => ServerResponse
    response.end = ((...args: unknown[]) => {
      settle()
      return end(...args)
    }) as ServerResponse['end']
    response.once('close', () => { if (!request.complete) settle() })
  })
  return async () => { if (open > 0) await new Promise<void>(resolve => { idle = resolve }) }
}

/**
 * s3rver on a free loopback port, with `bucket` and the template's CORS rules (pages of other
 * origins read results there), and the variables that point the AWS SDK and the example at it.
 * Loaded only when asked for: most uses need no S3.
 */
async function startS3 (bucket: string): Promise<{ env: Record<string, string>, close: () => Promise<void> }> {
  const [{ default: S3rver }, { CreateBucketCommand, PutBucketCorsCommand, S3Client }, { templateCorsRules }] =
    await Promise.all([import('s3rver'), import('@aws-sdk/client-s3'), import('./results-cors.js')])
  const directory = mkdtempSync(join(tmpdir(), 'jobs-s3-'))
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory })
  const { port } = await server.run()
  // Clients close idle connections first (undici after 4 s): with Node's 5 s default here, a
  // busy machine let s3rver close one just as a fetch reused it (an ECONNRESET in a test).
  const http = (server as unknown as { httpServer?: { keepAliveTimeout: number } }).httpServer
  if (http !== undefined) http.keepAliveTimeout = 65_000
  const endpoint = `http://127.0.0.1:${port}`
  const client = new S3Client({ region: REGION, endpoint, forcePathStyle: true, credentials: CREDENTIALS })
  await client.send(new CreateBucketCommand({ Bucket: bucket }))
  await client.send(new PutBucketCorsCommand({ Bucket: bucket, CORSConfiguration: { CORSRules: templateCorsRules() } }))
  client.destroy()
  return {
    env: { AWS_ENDPOINT_URL_S3: endpoint, AWS_S3_FORCE_PATH_STYLE: 'true', JOBS_RESULTS_BUCKET: bucket },
    async close () {
      await server.close()
      rmSync(directory, { recursive: true, force: true })
    }
  }
}
