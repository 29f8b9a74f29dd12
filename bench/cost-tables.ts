import { logLogChart } from './chart.js'
import { containerCost, pluginCost, progressWrites, PRICES, s3BreakEvenKb, synchronousCost, type Deployment } from './cost-model.js'

// The tables and the chart of docs/aws.md ("What a job costs on Lambda"), printed by npm run bench.

const usd = (value: number): string => `${value < 0 ? '−' : ''}$${Math.abs(value * 1000).toFixed(4)}`
const times = (value: number, base: number): string => `${(value / base).toFixed(2)}×`

export function label (seconds: number): string {
  return seconds < 60 ? `${seconds} s` : `${seconds / 60} min`
}

/** Dollars per 1,000 jobs by job length: the template's deployment by part, beside its other choices and the synchronous way. */
export function costTable (lengths: number[]): string {
  const rows = lengths.map(seconds => {
    const waiting = pluginCost(seconds)
    const sync = synchronousCost(seconds)
    const other = (deployment: Deployment): string => {
      const total = pluginCost(seconds, deployment).total
      return `${usd(total)} (${times(total, sync)})`
    }
    return `| ${label(seconds)} | ${usd(sync)} | ${usd(waiting.total)} (${times(waiting.total, sync)}) | ${usd(waiting.httpFunction)} | ${usd(waiting.worker)} | ` +
      `${usd(waiting.api)} | ${usd(waiting.sqs)} | ${usd(waiting.dynamoReads)} (${waiting.counts.readUnits}) | ${usd(waiting.dynamoWrites)} (${waiting.counts.writeUnits}) | ` +
      `${usd(waiting.logs)} | ${other({ frontEnd: 'http' })} | ${other({ respondAsync: true })} | ${other({ httpMemoryMb: 1024 })} |`
  })
  return [
    '| job | synchronous | plugin, client waits | of which: HTTP function (256 MB) | worker | API Gateway (REST) | SQS | DynamoDB reads (units) | DynamoDB writes (units) | CloudWatch Logs | the same behind the HTTP API | `Prefer: respond-async` | HTTP function at 1,024 MB |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows
  ].join('\n')
}

/** Each term of a 1-minute job's bill, as count × price, and what the options add. */
export function termsTable (): string {
  const base = pluginCost(60)
  const delta = (deployment: Deployment): number => pluginCost(60, deployment).total - base.total
  const big = 512
  const container = containerCost(900)
  const containerWorst = containerCost(900, { worst: true })
  const rows: Array<[string, string, number]> = [
    ['HTTP function waiting', `60 s × 0.25 GB × $${PRICES.lambdaGbSecond}`, 60 * 0.25 * PRICES.lambdaGbSecond],
    ['HTTP function handling', `${base.counts.requests} requests × 80 ms × 0.25 GB (20 ms at 1 GB)`, base.counts.requests * 0.08 * 0.25 * PRICES.lambdaGbSecond],
    ['Lambda requests', `${base.counts.invocations} invocations × $0.20 per million`, base.counts.invocations * PRICES.lambdaRequest],
    [`Lambda INIT (billed since ${PRICES.initBilledSince})`, `1 % of ${base.counts.invocations} invocations × 0.5 s, at their memory`,
      0.01 * 0.5 * (base.counts.requests * 0.25 + 1) * PRICES.lambdaGbSecond],
    ['worker', `60 s × 1 GB × $${PRICES.lambdaGbSecond}`, 60 * PRICES.lambdaGbSecond],
    ['API Gateway, one request per hop', `${base.counts.apiRequests} × $3.50 per million (REST)`, base.counts.apiRequests * PRICES.restApiRequest],
    ['… behind the HTTP API instead', `${base.counts.apiRequests} × $1.00 per million (each 512 KB one)`, delta({ frontEnd: 'http' })],
    ['SQS: send, receive, delete', `${base.counts.sqsRequests} × $0.40 per million (1 KB message: one 64 KB chunk each)`, base.sqs],
    ['… the request in a 200 KB message', '4 chunks sent, 4 received, 1 delete: +6 requests', delta({ messageKb: 200 })],
    ['DynamoDB polls and hop reads', `${base.counts.readUnits} read units × $0.125 per million`, base.dynamoReads],
    ['DynamoDB create, claim, complete', `${base.counts.writeUnits} write units × $0.625 per million`, base.dynamoWrites],
    ['Idempotency-Key: reservation and its expiry', '2 write units', delta({ idempotencyKey: true })],
    ['progress every 0.5 s (coalesced)', `${progressWrites(60, 0.5)} writes (${Math.floor(60 / 0.5)} reports)`, delta({ progressEverySeconds: 0.5 })],
    [`a ${big} KB result in DynamoDB`, `${big} write units, ${big / 4} read units`, delta({ resultKb: big }) - big / 1024 ** 2 * PRICES.transferOutGb],
    [`a ${big} KB result in S3`, '1 PUT × $0.005 per 1,000, 1 GET × $0.0004 per 1,000', delta({ resultKb: big, s3ThresholdKb: 8 }) - big / 1024 ** 2 * PRICES.transferOutGb],
    ['CloudWatch Logs', `${base.counts.invocations} invocations × 1 KB × $0.50 per GB`, base.logs],
    ['transfer out', '1 KB × $0.09 per GB (the same synchronously)', base.transfer],
    ['container worker, a 900 s job run where it was accepted (lease 30 s)',
      `${container.renewals} renewals; ${container.backupCycles}–${containerWorst.backupCycles} backup cycles (receive, refused claim, send, delete)`, container.cost]
  ]
  return [
    '| term | count × price | $ per 1,000 jobs |',
    '|---|---|---|',
    ...rows.map(([term, count, dollars]) => `| ${term} | ${count} | ${usd(dollars)} |`),
    `| **a 1-minute job, client waiting** | | **${usd(base.total)}** (synchronous ${usd(synchronousCost(60))}) |`
  ].join('\n')
}

/** Where a result's body costs less, by size: DynamoDB (written once, read once) or S3. */
export function resultTable (sizesKb: number[]): string {
  const rows = sizesKb.map(kb => {
    const dynamo = pluginCost(60, { resultKb: kb }).total
    const s3 = pluginCost(60, { resultKb: kb, s3ThresholdKb: 0 }).total
    return `| ${kb} KB | ${usd(dynamo)} | ${usd(s3)} | ${dynamo <= s3 ? 'DynamoDB' : 'S3'} |`
  })
  return [
    `Break-even: ${s3BreakEvenKb().toFixed(1)} KB (a body written once and read once).`,
    '',
    '| result body | 1-minute job, body in DynamoDB | body in S3 | cheaper |',
    '|---|---|---|---|',
    ...rows
  ].join('\n')
}

/** An SVG chart of dollars per 1,000 jobs against job length (both log scales). */
export function costChart (lengths: number[]): string {
  const series: Array<[string, (seconds: number) => number]> = [
    ['plugin, client waits', seconds => pluginCost(seconds).total],
    ['plugin, HTTP API', seconds => pluginCost(seconds, { frontEnd: 'http' }).total],
    ['plugin, respond-async', seconds => pluginCost(seconds, { respondAsync: true }).total],
    ['synchronous', seconds => synchronousCost(seconds)]
  ]
  return logLogChart({
    title: `US dollars per 1,000 jobs on Lambda, by job length (${PRICES.region} list prices of ${PRICES.date})`,
    xLabel: 'job length (log scale)',
    xTick: label,
    yTick: value => `$${value >= 1 ? value : value.toFixed(Math.round(-Math.log10(value)))}`,
    series: series.map(([name, cost]) => ({ name, points: lengths.map(seconds => [seconds, cost(seconds) * 1000]) }))
  })
}
