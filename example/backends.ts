import { dynamoDbStore, memoryStore, redisQueue, redisStore, s3Results, sqsQueue, type LongRunningOptions } from '../src/index.js'

/** Reads a numeric environment variable, failing loudly on anything else. */
export function numberFromEnv (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value)) throw new TypeError(`Expected ${name} to be a number, got ${JSON.stringify(raw)}`)
  return value
}

/**
 * `CORS_ORIGINS`: comma-separated origins (`https://app.example.com,http://localhost:5173`)
 * whose pages may call the example (CORS for them, `DELETE` allowed, the client's headers exposed).
 */
export function corsOriginsFromEnv (): string[] {
  const origins = (process.env.CORS_ORIGINS ?? '').split(',').map(origin => origin.trim()).filter(origin => origin !== '')
  const bad = origins.find(origin => !URL.canParse(origin) || new URL(origin).origin !== origin)
  if (bad !== undefined) throw new TypeError(`Expected CORS_ORIGINS to be comma-separated origins such as https://app.example.com, got ${JSON.stringify(bad)}`)
  return origins
}

/**
 * The backends named by the environment: `REDIS_URL` set → Redis queue and store (this process
 * serves and runs jobs, as a container does); `JOBS_QUEUE_URL` and `JOBS_TABLE` both set → SQS and
 * DynamoDB; neither → the embedded default (`JOBS_MEMORY_MIB`: its memory budget). Endpoints and credentials come from the AWS SDK's
 * own variables (`AWS_REGION`, `AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_DYNAMODB`, ...).
 */
export function backendsFromEnv (): Pick<LongRunningOptions, 'queue' | 'store' | 'leaseSeconds' | 'results' | 'resultTtlSeconds' | 'consume'> {
  const redisUrl = process.env.REDIS_URL
  if (redisUrl !== undefined && redisUrl !== '') return redisFromEnv(redisUrl)
  const queueUrl = process.env.JOBS_QUEUE_URL
  const tableName = process.env.JOBS_TABLE
  // JOBS_RESULT_TTL_SECONDS (optional): resultTtlSeconds, on any backend.
  const ttl = numberFromEnv('JOBS_RESULT_TTL_SECONDS', 0)
  const resultTtl = ttl === 0 ? {} : { resultTtlSeconds: ttl }
  if (queueUrl === undefined && tableName === undefined) return { ...embeddedFromEnv(), ...resultTtl }
  if (queueUrl === undefined || tableName === undefined) throw new Error('Set both JOBS_QUEUE_URL and JOBS_TABLE, or neither')
  // JOBS_LEASE_SECONDS (default 30): how long a container worker's claim and its hidden message
  // outlive the worker, i.e. how soon another worker takes over the jobs of one that died.
  const leaseSeconds = numberFromEnv('JOBS_LEASE_SECONDS', 30)
  return {
    ...resultTtl,
    leaseSeconds,
    queue: sqsQueue({
      queueUrl,
      visibilityTimeoutSeconds: leaseSeconds,
      // The queue's redrive policy and the longest retention a message can have (its DLQ's, for
      // a redrive): example/template.yaml sets both.
      maxReceiveCount: numberFromEnv('JOBS_MAX_RECEIVE_COUNT', 10),
      messageRetentionSeconds: numberFromEnv('JOBS_MESSAGE_RETENTION_SECONDS', 345_600),
      // local-aws-sqs holds a long poll open until it has the whole batch (AWS answers as soon
      // as it has one message): against it, ask for one at a time so that jobs start at once.
      ...(process.env.AWS_ENDPOINT_URL_SQS === undefined ? {} : { receiveBatchSize: 1 })
    }),
    store: dynamoDbStore({ tableName }),
    // JOBS_RESULTS_BUCKET (optional): large results go to this bucket, and clients to them.
    ...resultsFromEnv()
  }
}

/**
 * Redis (or Valkey) at `redisUrl` for the queue and the store; `JOBS_LEASE_SECONDS` (default 30)
 * is the lease and the queue's lock, as on SQS; `JOBS_RESULTS_BUCKET` as on AWS.
 */
function redisFromEnv (url: string): ReturnType<typeof backendsFromEnv> {
  const ttl = numberFromEnv('JOBS_RESULT_TTL_SECONDS', 0)
  const leaseSeconds = numberFromEnv('JOBS_LEASE_SECONDS', 30)
  return {
    ...(ttl === 0 ? {} : { resultTtlSeconds: ttl }),
    leaseSeconds,
    consume: true,
    queue: redisQueue({ url, visibilityTimeoutSeconds: leaseSeconds }),
    store: redisStore({ url }),
    ...resultsFromEnv()
  }
}

/**
 * The embedded default; `JOBS_MEMORY_MIB` (optional) sets its memory budget for requests and
 * results (the memory store's `maxBytes`, default 256 MiB).
 */
function embeddedFromEnv (): Pick<LongRunningOptions, 'store' | 'results'> {
  const mib = numberFromEnv('JOBS_MEMORY_MIB', 0)
  // JOBS_RESULTS_BUCKET as on AWS: large results and uploads go there on every backend.
  return { ...(mib === 0 ? {} : { store: memoryStore({ maxBytes: Math.round(mib * 1024 * 1024) }) }), ...resultsFromEnv() }
}

/**
 * `s3Results` when `JOBS_RESULTS_BUCKET` is set. The SDK reads `AWS_ENDPOINT_URL_S3` itself;
 * `AWS_S3_FORCE_PATH_STYLE=true` (emulators: no bucket subdomains) is passed on.
 * `JOBS_RESULTS_EXPIRE_DAYS` (optional): the bucket's lifecycle, which resultTtlSeconds must respect.
 */
function resultsFromEnv (): Pick<LongRunningOptions, 'results'> {
  const bucket = process.env.JOBS_RESULTS_BUCKET
  if (bucket === undefined || bucket === '') return {}
  const days = numberFromEnv('JOBS_RESULTS_EXPIRE_DAYS', 0)
  return {
    results: s3Results({ bucket, forcePathStyle: process.env.AWS_S3_FORCE_PATH_STYLE === 'true', ...(days === 0 ? {} : { expireAfterDays: days }) })
  }
}
