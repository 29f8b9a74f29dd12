import { pollIntervalMs } from '../src/http/poller.js'
import { logLogChart } from './chart.js'

/**
 * What a job costs on AWS, in US dollars: prices × counts, no timings. The counts are the
 * plugin's own (requests per job as `bench/cost.ts` measures them on the emulators, polling reads
 * from the poller's schedule); the prices are AWS's public list prices below.
 */

/**
 * us-east-1 list prices, as AWS publishes them on its pricing pages (Lambda, SQS, DynamoDB,
 * API Gateway), read 2026-11-27. Check them before relying on the figures: they change.
 */
export const PRICES = {
  date: '2026-11-27',
  region: 'us-east-1',
  /** Lambda, Arm (the SAM template's `arm64`): per GB-second, and per request. */
  lambdaGbSecond: 0.0000133334,
  lambdaRequest: 0.20 / 1e6,
  /** SQS standard queue, per request (each 64 KB of a request counts as one). */
  sqsRequest: 0.40 / 1e6,
  /** DynamoDB on-demand: a read unit is one strongly consistent read of up to 4 KB; a write unit one write of up to 1 KB. */
  dynamoReadUnit: 0.125 / 1e6,
  dynamoWriteUnit: 0.625 / 1e6,
  /** API Gateway REST API (the template's), per request (first 333 million a month). */
  apiRequest: 3.50 / 1e6
} as const

/** How the job is deployed and asked for. Defaults: the example's SAM template. */
export interface Deployment {
  /** Memory of the HTTP function and of the worker, MB. @default 1024 */
  memoryMb?: number
  /** The plugin's `waitSeconds`. @default 25 */
  waitSeconds?: number
  /** The plugin's `pollIntervalMs`. @default 100 */
  pollIntervalMs?: number
  /** Billed time of one HTTP invocation besides its waiting (accepting, answering), ms. @default 20 */
  handlingMs?: number
  /** Size of the job's item (≤ 4 KB: the request and response inline below 2 KB each), KB. @default 1 */
  itemKb?: number
  /** `Prefer: respond-async`: the client asks again every `Retry-After` (1 s) instead of waiting in a function. */
  respondAsync?: boolean
}

/** One job's cost, by part; `total` is their sum. */
export interface JobCost {
  httpFunction: number
  worker: number
  api: number
  sqs: number
  dynamoReads: number
  dynamoWrites: number
  total: number
  counts: { requests: number, pollReads: number, reads: number, writeUnits: number }
}

/** Polling reads of one waiting request for a job of `ms`: the poller's schedule, and the read that finds it done. */
export function pollReads (ms: number, baseMs = 100): number {
  let reads = 1
  for (let at = pollIntervalMs(0, baseMs); at < ms; at += pollIntervalMs(at, baseMs)) reads += 1
  return reads
}

// Per job besides polling (bench/cost.ts measures them): SQS send, the event source mapping's
// receive and delete; DynamoDB create, claim and completion (each billed by the item's size).
const SQS_REQUESTS = 3
const WRITES = 3

/** A job of `seconds` through the plugin: an HTTP function that waits (or not), a worker, SQS, DynamoDB. */
export function pluginCost (seconds: number, deployment: Deployment = {}): JobCost {
  const { memoryMb = 1024, waitSeconds = 25, pollIntervalMs: baseMs = 100, handlingMs = 20, itemKb = 1, respondAsync = false } = deployment
  const gb = memoryMb / 1024
  // Waiting: one request per `waitSeconds` (the first, then each 303); each waits in a function.
  // respond-async: the first request and one per second after it, none of them waiting.
  const requests = respondAsync ? 1 + Math.ceil(seconds) : Math.max(1, Math.ceil(seconds / waitSeconds))
  const waitingSeconds = respondAsync ? 0 : seconds
  const pollReadCount = respondAsync ? 0 : pollReads(seconds * 1000, baseMs)
  // Every request after the first reads the job once before it waits (or answers).
  const reads = pollReadCount + (requests - 1)
  const writeUnits = WRITES * Math.ceil(itemKb)
  const part = {
    httpFunction: (waitingSeconds + requests * handlingMs / 1000) * gb * PRICES.lambdaGbSecond + requests * PRICES.lambdaRequest,
    worker: seconds * gb * PRICES.lambdaGbSecond + PRICES.lambdaRequest,
    api: requests * PRICES.apiRequest,
    sqs: SQS_REQUESTS * PRICES.sqsRequest,
    dynamoReads: reads * Math.ceil(itemKb / 4) * PRICES.dynamoReadUnit,
    dynamoWrites: writeUnits * PRICES.dynamoWriteUnit
  }
  return { ...part, total: Object.values(part).reduce((sum, value) => sum + value, 0), counts: { requests, pollReads: pollReadCount, reads, writeUnits } }
}

/** The same job run synchronously in one function (a raised API Gateway timeout, or response streaming). */
export function synchronousCost (seconds: number, deployment: Deployment = {}): number {
  const { memoryMb = 1024, handlingMs = 20 } = deployment
  return (seconds + handlingMs / 1000) * (memoryMb / 1024) * PRICES.lambdaGbSecond + PRICES.lambdaRequest + PRICES.apiRequest
}

/** The table in docs/aws.md ("What a job costs on Lambda"): dollars per 1,000 jobs by job length, the plugin's two ways beside the synchronous one. */
export function costTable (lengths: number[]): string {
  const usd = (value: number): string => `$${(value * 1000).toFixed(4)}`
  const rows = lengths.map(seconds => {
    const waiting = pluginCost(seconds)
    const async = pluginCost(seconds, { respondAsync: true })
    const sync = synchronousCost(seconds)
    return `| ${label(seconds)} | ${usd(sync)} | ${usd(waiting.total)} (${(waiting.total / sync).toFixed(2)}×) | ${usd(waiting.httpFunction)} | ${usd(waiting.worker)} | ${usd(waiting.sqs + waiting.api)} | ${usd(waiting.dynamoReads)} (${waiting.counts.reads}) | ${usd(waiting.dynamoWrites)} | ${usd(async.total)} (${(async.total / sync).toFixed(2)}×) |`
  })
  return [
    '| job | synchronous | plugin, client waits | of which: HTTP function waiting | worker | SQS + API Gateway | DynamoDB reads (count) | DynamoDB writes | plugin, `Prefer: respond-async` |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows
  ].join('\n')
}

function label (seconds: number): string {
  return seconds < 60 ? `${seconds} s` : `${seconds / 60} min`
}

/** An SVG chart of dollars per 1,000 jobs against job length (both log scales). */
export function costChart (lengths: number[]): string {
  const series: Array<[string, (seconds: number) => number]> = [
    ['plugin, client waits', seconds => pluginCost(seconds).total],
    ['plugin, respond-async', seconds => pluginCost(seconds, { respondAsync: true }).total],
    ['synchronous', seconds => synchronousCost(seconds)]
  ]
  return logLogChart({
    title: `US dollars per 1,000 jobs on Lambda, by job length (${PRICES.region} list prices of ${PRICES.date})`,
    xLabel: 'job length (log scale)',
    xTick: label,
    yTick: usd => `$${usd >= 1 ? usd : usd.toFixed(Math.round(-Math.log10(usd)))}`,
    series: series.map(([name, cost]) => ({ name, points: lengths.map(seconds => [seconds, cost(seconds) * 1000]) }))
  })
}
