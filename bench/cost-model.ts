import { pollIntervalMs } from '../src/http/poller.js'
import { PRICES } from './prices.js'

export { PRICES }

/**
 * What a job costs on AWS, in US dollars: prices ({@link PRICES}, with their sources) × counts,
 * no timings. The counts are the plugin's own (requests per job as `bench/cost.ts` measures
 * them on the emulators, polling reads from the poller's schedule, progress writes from the
 * reporter's rule); what the code cannot know (cold starts, log volume, sizes) is an assumption
 * named in {@link Deployment}, with its default.
 */

/** How the job is deployed and asked for. Defaults: the example's SAM template, its REST API. */
export interface Deployment {
  /** Memory of the HTTP function, MB. @default 256 */
  httpMemoryMb?: number
  /** Memory of the worker, and of the synchronous function it is compared with, MB. @default 1024 */
  workerMemoryMb?: number
  /** The API Gateway in front: the REST API, or the HTTP API (30 s: waits up to 28 s fit). @default 'rest' */
  frontEnd?: 'rest' | 'http'
  /** The plugin's `waitSeconds`. @default 25 */
  waitSeconds?: number
  /** The plugin's `pollIntervalMs`. @default 100 */
  pollIntervalMs?: number
  /** Billed time of one HTTP invocation besides its waiting, ms at 1,024 MB (Lambda's CPU share follows memory: 4 times as long at 256 MB, the same GB-seconds). @default 20 */
  handlingMs?: number
  /** Size of the job's item, KB: billed on every write (1 KB units) and poll (4 KB units). @default 1 */
  itemKb?: number
  /** `Prefer: respond-async`: the client asks again every `Retry-After` (1 s) instead of waiting in a function. */
  respondAsync?: boolean
  /** The request carries an `Idempotency-Key` (the client's POST, PUT, PATCH, DELETE). @default false */
  idempotencyKey?: boolean
  /** The handler reports progress every this many seconds; none: it never does. @default none */
  progressEverySeconds?: number
  /** The response body, KB. @default 1 */
  resultKb?: number
  /** A results bucket and its `thresholdBytes`, in KB; none: no bucket (bodies up to 6 MiB in DynamoDB). @default none */
  s3ThresholdKb?: number
  /** The job's SQS message (the request rides in it up to the queue's message size), KB. @default 1 */
  messageKb?: number
  /** Share of invocations that start an execution environment, whose INIT is billed. @default 0.01 (AWS: "under 1%") */
  coldStartShare?: number
  /** INIT duration of the bundle, s. @default 0.5 */
  initSeconds?: number
  /** CloudWatch Logs per invocation (Lambda's START, END and REPORT lines are about 0.3 KB), KB. @default 1 */
  logKbPerInvocation?: number
}

/** One job's cost, by part; `total` is their sum. */
export interface JobCost {
  httpFunction: number
  worker: number
  api: number
  sqs: number
  dynamoReads: number
  dynamoWrites: number
  s3: number
  logs: number
  transfer: number
  total: number
  counts: JobCounts
}

/** What one job is billed for, by count. */
export interface JobCounts {
  /** HTTP requests through API Gateway, each an HTTP function invocation (the first, each 303 hop or status request). */
  requests: number
  /** API Gateway's billed requests (the HTTP API meters each 512 KB as one). */
  apiRequests: number
  pollReads: number
  /** DynamoDB read units: polls, a read per hop, the result's chunks. */
  readUnits: number
  /** DynamoDB write units: create, claim, complete, the result's chunks, progress, the key's reservation and expiry. */
  writeUnits: number
  progressWrites: number
  sqsRequests: number
  s3Requests: number
  invocations: number
  /** HTTP function and worker seconds billed: waiting, handling, INIT. */
  httpSeconds: number
  workerSeconds: number
}

const DEFAULTS = {
  httpMemoryMb: 256,
  workerMemoryMb: 1024,
  frontEnd: 'rest',
  waitSeconds: 25,
  pollIntervalMs: 100,
  handlingMs: 20,
  itemKb: 1,
  respondAsync: false,
  idempotencyKey: false,
  progressEverySeconds: undefined,
  resultKb: 1,
  s3ThresholdKb: undefined,
  messageKb: 1,
  coldStartShare: 0.01,
  initSeconds: 0.5,
  logKbPerInvocation: 1
} as const

type Resolved = Required<Omit<Deployment, 'progressEverySeconds' | 's3ThresholdKb'>> & Pick<Deployment, 'progressEverySeconds' | 's3ThresholdKb'>
const resolve = (deployment: Deployment): Resolved => ({ ...DEFAULTS, ...deployment })

/** The largest body the store keeps: larger ones need a bucket. */
const MAX_STORED_KB = 6 * 1024
/** Bodies packed to at most 2 KB live in the job's item; larger ones in chunk items (src/store/dynamodb-bodies.ts). */
const INLINE_KB = 2
/** `s3Results`' `partBytes`: a body up to it is one PUT, a larger one a multipart upload. */
const PART_KB = 8 * 1024

/** Polling reads of one waiting request for a job of `ms`: the poller's schedule, and the read that finds it done. */
export function pollReads (ms: number, baseMs = 100): number {
  let reads = 1
  for (let at = pollIntervalMs(0, baseMs); at < ms; at += pollIntervalMs(at, baseMs)) reads += 1
  return reads
}

/**
 * Progress writes of a job of `seconds` that reports every `every` seconds, by the reporter's
 * rule (src/job/progress.ts): the first at once, then at most one a second, the latest, and the
 * last one before the result.
 */
export function progressWrites (seconds: number, every: number | undefined): number {
  if (every === undefined) return 0
  let writes = 0
  let nextAt = -Infinity
  let pending = false
  for (let i = 1; i * every <= seconds + 1e-9; i++) {
    const at = i * every
    if (pending && nextAt <= at) {
      writes++
      pending = false
      nextAt += 1
    }
    if (at >= nextAt) {
      writes++
      nextAt = at + 1
    } else pending = true
  }
  return writes + (pending ? 1 : 0)
}

/** Where the result's body goes, and what storing and reading it once costs in requests and units. */
function resultPlacement (d: Resolved): { inS3: boolean, writeUnits: number, readUnits: number, s3Requests: number } {
  const inS3 = (d.s3ThresholdKb !== undefined && d.resultKb >= d.s3ThresholdKb) || d.resultKb > MAX_STORED_KB
  if (inS3) {
    const parts = Math.ceil(d.resultKb / PART_KB)
    // One PUT, or create + parts + complete; then the client's GET of the presigned URL.
    return { inS3, writeUnits: 0, readUnits: 0, s3Requests: (parts > 1 ? parts + 2 : 1) + 1 }
  }
  const chunked = d.resultKb > INLINE_KB
  return { inS3, writeUnits: chunked ? Math.ceil(d.resultKb) : 0, readUnits: chunked ? Math.ceil(d.resultKb / 4) : 0, s3Requests: 0 }
}

// Per job besides polling and the result (bench/cost.ts measures them): SQS send, the event
// source mapping's receive and delete; DynamoDB create, claim and completion.
const JOB_WRITES = 3

/** A job of `seconds` through the plugin on Lambda: an HTTP function that waits (or not), a worker, SQS, DynamoDB, maybe S3. */
export function pluginCost (seconds: number, deployment: Deployment = {}): JobCost {
  const d = resolve(deployment)
  const httpGb = d.httpMemoryMb / 1024
  const workerGb = d.workerMemoryMb / 1024
  // Waiting: one request per `waitSeconds` (the first, then each 303); each waits in a function.
  // respond-async: the first request and one per second after it, none of them waiting.
  const requests = d.respondAsync ? 1 + Math.ceil(seconds) : Math.max(1, Math.ceil(seconds / d.waitSeconds))
  const pollReadCount = d.respondAsync ? 0 : pollReads(seconds * 1000, d.pollIntervalMs)
  const result = resultPlacement(d)
  const itemReadUnits = Math.ceil(d.itemKb / 4)
  // Every request after the first reads the job once before it waits (or answers).
  const readUnits = (pollReadCount + requests - 1) * itemReadUnits + result.readUnits
  const progress = progressWrites(seconds, d.progressEverySeconds)
  const itemWriteUnits = Math.ceil(d.itemKb)
  // A key: its reservation (a conditional PutItem) and, at completion, its expiry set to the result's.
  const writeUnits = (JOB_WRITES + progress) * itemWriteUnits + result.writeUnits + (d.idempotencyKey ? 2 : 0)
  const sqsChunks = Math.ceil(d.messageKb / PRICES.sqsChunkKb)
  const sqsRequests = 2 * sqsChunks + 1
  // The answer that carries the body is metered per 512 KB on the HTTP API.
  const bodyMeter = d.frontEnd === 'http' && !result.inS3 ? Math.max(1, Math.ceil(d.resultKb / PRICES.httpApiMeterKb)) : 1
  const apiRequests = requests - 1 + bodyMeter
  const invocations = requests + 1
  const handlingSeconds = d.handlingMs / 1000 * 1024 / d.httpMemoryMb
  const httpSeconds = (d.respondAsync ? 0 : seconds) + requests * (handlingSeconds + d.coldStartShare * d.initSeconds)
  const workerSeconds = seconds + d.coldStartShare * d.initSeconds
  const part = {
    httpFunction: httpSeconds * httpGb * PRICES.lambdaGbSecond + requests * PRICES.lambdaRequest,
    worker: workerSeconds * workerGb * PRICES.lambdaGbSecond + PRICES.lambdaRequest,
    api: apiRequests * (d.frontEnd === 'http' ? PRICES.httpApiRequest : PRICES.restApiRequest),
    sqs: sqsRequests * PRICES.sqsRequest,
    dynamoReads: readUnits * PRICES.dynamoReadUnit,
    dynamoWrites: writeUnits * PRICES.dynamoWriteUnit,
    s3: result.inS3 ? (result.s3Requests - 1) * PRICES.s3Put + PRICES.s3Get : 0,
    logs: invocations * d.logKbPerInvocation / 1024 ** 2 * PRICES.logsIngestionGb,
    transfer: d.resultKb / 1024 ** 2 * PRICES.transferOutGb
  }
  return {
    ...part,
    total: Object.values(part).reduce((sum, value) => sum + value, 0),
    counts: { requests, apiRequests, pollReads: pollReadCount, readUnits, writeUnits, progressWrites: progress, sqsRequests, s3Requests: result.s3Requests, invocations, httpSeconds, workerSeconds }
  }
}

/**
 * The same job run synchronously in one function of the worker's size behind the REST API (its
 * timeout raised past 29 s, or response streaming): one invocation, its INIT share, its logs, the
 * body sent out.
 */
export function synchronousCost (seconds: number, deployment: Deployment = {}): number {
  const d = resolve(deployment)
  const billedSeconds = seconds + d.handlingMs / 1000 + d.coldStartShare * d.initSeconds
  return billedSeconds * (d.workerMemoryMb / 1024) * PRICES.lambdaGbSecond + PRICES.lambdaRequest + PRICES.restApiRequest +
    d.logKbPerInvocation / 1024 ** 2 * PRICES.logsIngestionGb + d.resultKb / 1024 ** 2 * PRICES.transferOutGb
}

/**
 * The threshold at which a body costs less in S3 than in DynamoDB, KB: storing it (1 KB write
 * units, or a PUT) and reading it `reads` times (4 KB read units, or a GET each). The transfer
 * out is the same either way.
 */
export function s3BreakEvenKb (reads = 1): number {
  const dynamoPerKb = PRICES.dynamoWriteUnit + reads * PRICES.dynamoReadUnit / 4
  return (PRICES.s3Put + reads * PRICES.s3Get) / dynamoPerKb
}

/** A container worker's requests for one job (`consume: true`), beside its own compute, which is billed elsewhere. */
export interface ContainerCounts {
  /** Lease renewals, each an `UpdateItem` (and, for a job it received, a `ChangeMessageVisibility`). */
  renewals: number
  /** Times a local run's backup message shows while the job runs: each a receive, a refused claim, a send and a delete. */
  backupCycles: number
  sqsRequests: number
  writeUnits: number
  cost: number
}

/**
 * A job of `seconds` on a container worker with `leaseSeconds` (30 by default). `localRun`: the
 * process that accepted it runs it (`src/job/local-start.ts`): its backup message, delayed by the
 * lease, shows while the job runs and goes out again with the lease's remaining time (between two
 * thirds of it and all of it, as renewals every third keep it), and once more after the end to be
 * deleted. `worst`: the backup comes back after two thirds of the lease each time, not after all of it.
 */
export function containerCost (seconds: number, options: { leaseSeconds?: number, localRun?: boolean, worst?: boolean, itemKb?: number } = {}): ContainerCounts {
  const { leaseSeconds = 30, localRun = true, worst = false, itemKb = 1 } = options
  const renewals = Math.floor(seconds / (leaseSeconds / 3))
  const period = worst ? leaseSeconds * 2 / 3 : leaseSeconds
  const backupCycles = localRun && seconds >= leaseSeconds ? 1 + Math.floor((seconds - leaseSeconds) / period) : 0
  // Queue path: send, receive, delete, and a ChangeMessageVisibility per renewal. Local run: the
  // send, each cycle's receive, send and delete, and the last receive and delete.
  const sqsRequests = localRun ? 1 + 3 * backupCycles + 2 : 3 + renewals
  // Create, claim (a local run creates the job claimed: its backup's refused claim instead),
  // completion, renewals, and each cycle's refused claim (billed like any write).
  const writeUnits = (JOB_WRITES + renewals + backupCycles) * Math.ceil(itemKb)
  return { renewals, backupCycles, sqsRequests, writeUnits, cost: sqsRequests * PRICES.sqsRequest + writeUnits * PRICES.dynamoWriteUnit }
}
