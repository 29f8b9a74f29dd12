import t from 'tap'
import { containerCost, pluginCost, pollReads, progressWrites, PRICES, s3BreakEvenKb, synchronousCost } from '../bench/cost-model.js'
import { costChart, costTable, resultTable, termsTable } from '../bench/cost-tables.js'

// The cost tables in docs/aws.md ("What a job costs on Lambda") are arithmetic: prices × counts.
// These are the counts and the sums, checked by hand, and the shape of the rest.

const gbSeconds = (seconds: number, gb = 1): number => seconds * gb * PRICES.lambdaGbSecond
const logs = (invocations: number): number => invocations * PRICES.logsIngestionGb / 1024 ** 2
// Equal but for the floating point rounding of a different order of sums.
const near = (t: { ok: (ok: boolean, message: string) => unknown }, actual: number, expected: number, message: string): void => {
  t.ok(Math.abs(actual - expected) <= 1e-15 + Math.abs(expected) * 1e-12, `${message}: ${actual} = ${expected}`)
}

t.test('a 1-minute job, the template\'s deployment, client waiting: every term priced by hand', async t => {
  const cost = pluginCost(60)
  const requests = 3 // 60 s at waitSeconds 25: the first request and two 303 hops
  t.same(cost.counts, {
    requests,
    apiRequests: 3,
    pollReads: pollReads(60_000),
    readUnits: pollReads(60_000) + 2, // one 4 KB unit each: a 1 KB item; each hop reads the job once
    writeUnits: 3, // create, claim, complete, 1 KB each
    progressWrites: 0,
    sqsRequests: 3, // send, receive, delete, one 64 KB chunk each
    s3Requests: 0,
    invocations: 4, // three of the HTTP function, one of the worker
    httpSeconds: 60 + requests * (0.08 + 0.01 * 0.5),
    workerSeconds: 60 + 0.01 * 0.5
  })
  // HTTP function: 256 MB waits 60 s; each request is handled in 80 ms (20 ms at 1 GB) and pays
  // 1 % of a 0.5 s INIT.
  near(t, cost.httpFunction, gbSeconds(60 + requests * (0.08 + 0.005), 0.25) + requests * PRICES.lambdaRequest, 'HTTP function')
  near(t, cost.worker, gbSeconds(60.005) + PRICES.lambdaRequest, 'worker: 1 GB for 60 s and its INIT share')
  near(t, cost.api, 3 * 3.50 / 1e6, 'REST API: one request per hop')
  near(t, cost.sqs, 3 * 0.40 / 1e6, 'SQS')
  near(t, cost.dynamoReads, cost.counts.readUnits * 0.125 / 1e6, 'DynamoDB reads')
  near(t, cost.dynamoWrites, 3 * 0.625 / 1e6, 'DynamoDB writes')
  t.equal(cost.s3, 0)
  near(t, cost.logs, logs(4), 'CloudWatch Logs: 1 KB per invocation at $0.50 per GB')
  near(t, cost.transfer, 0.09 / 1024 ** 2, 'a 1 KB body out at $0.09 per GB')
  near(t, cost.total, cost.httpFunction + cost.worker + cost.api + cost.sqs + cost.dynamoReads + cost.dynamoWrites + cost.s3 + cost.logs + cost.transfer, 'total')
  const sync = synchronousCost(60)
  near(t, sync, gbSeconds(60 + 0.02 + 0.005) + PRICES.lambdaRequest + 3.50 / 1e6 + logs(1) + 0.09 / 1024 ** 2, 'synchronous: one 1 GB function behind the REST API')
  const ratio = cost.total / sync
  t.ok(ratio <= 1.3, `issue 28: at most 1.3× the synchronous one (${ratio.toFixed(3)}×; 2.04× with a 1,024 MB HTTP function)`)
  const before = pluginCost(60, { httpMemoryMb: 1024 }).total / sync
  t.ok(before > 2, `the waiting function at 1,024 MB doubled it (${before.toFixed(2)}×)`)
})

t.test('each option adds its own term, priced by hand', async t => {
  const base = pluginCost(60)
  const http = pluginCost(60, { frontEnd: 'http' })
  near(t, http.api, 3 * 1.00 / 1e6, 'HTTP API: $1.00 per million')
  near(t, http.total - base.total, 3 * (1.00 - 3.50) / 1e6, 'nothing else changes')
  t.equal(pluginCost(60, { frontEnd: 'http', resultKb: 1500 }).counts.apiRequests, 2 + 3, 'the HTTP API meters a 1,500 KB answer as three requests')

  const keyed = pluginCost(60, { idempotencyKey: true })
  t.equal(keyed.counts.writeUnits, 5, 'Idempotency-Key: its reservation, and its expiry set at completion')

  const reporting = pluginCost(60, { progressEverySeconds: 0.5 })
  t.equal(reporting.counts.progressWrites, 61, 'a report every 0.5 s: the first at once, one a second, the last')
  t.equal(reporting.counts.writeUnits, 3 + 61)

  const message = pluginCost(60, { messageKb: 200 })
  t.equal(message.counts.sqsRequests, 4 + 4 + 1, 'SQS bills each 64 KB: a 200 KB message is 4 sends and 4 receives')

  const dynamo = pluginCost(60, { resultKb: 512 })
  t.equal(dynamo.counts.writeUnits, 3 + 512, 'issue 28: a 0.5 MiB result in DynamoDB is 512 more write units')
  t.equal(dynamo.counts.readUnits, base.counts.readUnits + 128, 'and 128 read units per read')
  near(t, (dynamo.dynamoWrites - base.dynamoWrites) * 1000, 512 * 0.625 / 1000, '$0.32 per 1,000 jobs')
  const s3 = pluginCost(60, { resultKb: 512, s3ThresholdKb: 8 })
  t.same([s3.counts.writeUnits, s3.counts.readUnits, s3.counts.s3Requests], [3, base.counts.readUnits, 2], 'in S3: one PUT, one GET')
  near(t, s3.s3, 0.005 / 1000 + 0.0004 / 1000, 'S3: $0.005 per 1,000 PUTs, $0.0004 per 1,000 GETs')
  near(t, s3.transfer, dynamo.transfer, 'the same bytes go out either way')
  t.equal(pluginCost(60, { resultKb: 50 * 1024, s3ThresholdKb: 4096 }).counts.s3Requests, 7 + 2 + 1, 'a 50 MiB body: 7 parts of 8 MiB, create and complete, and the GET')
  t.equal(pluginCost(60, { resultKb: 7000 }).counts.s3Requests, 2, 'over 6 MiB a body goes to S3 whatever the threshold')

  const cold = pluginCost(60, { coldStartShare: 1, initSeconds: 1 })
  near(t, cold.worker - base.worker, gbSeconds(1 - 0.005), 'INIT: billed like the invocation, at its memory')

  const async = pluginCost(600, { respondAsync: true })
  t.same([async.counts.requests, async.counts.pollReads, async.counts.readUnits], [601, 0, 600], 'respond-async: a request a second, none waiting, no polling')
  near(t, async.httpFunction, gbSeconds(601 * (0.08 + 0.005), 0.25) + 601 * PRICES.lambdaRequest, 'handling only')
})

t.test('issue 28: the progress writes of a 10 s job reporting every 10 ms: at most 12, as test/job/progress.test.ts counts them', async t => {
  t.equal(progressWrites(10, 0.01), 11)
  t.equal(progressWrites(10, undefined), 0)
  t.equal(progressWrites(10, 2), 5, 'reports a second apart or more are each written')
  t.equal(progressWrites(900, 5 / 366), 901, 'the issue\'s 366 reports in 5 s, for 15 minutes: 901 writes instead of 66,000')
})

t.test('a container worker: renewals and a local run\'s backup cycles, for jobs longer than the lease', async t => {
  const short = containerCost(10)
  t.same([short.renewals, short.backupCycles, short.sqsRequests, short.writeUnits], [1, 0, 3, 4], 'under the lease: one send, its receive and delete, three writes and a renewal')
  const long = containerCost(900)
  t.same([long.renewals, long.backupCycles], [90, 30], 'a renewal every 10 s; the backup shows every 30 s')
  t.equal(containerCost(900, { worst: true }).backupCycles, 44, 'or every 20 s: the lease left after a renewal')
  t.equal(long.sqsRequests, 1 + 3 * 30 + 2, 'each cycle a receive, a send and a delete')
  t.equal(long.writeUnits, 3 + 90 + 30, 'each renewal a write, each cycle a refused claim')
  near(t, long.cost, long.sqsRequests * 0.40 / 1e6 + long.writeUnits * 0.625 / 1e6, 'priced')
  const queued = containerCost(900, { localRun: false })
  t.same([queued.backupCycles, queued.sqsRequests], [0, 3 + 90], 'a job it received: a ChangeMessageVisibility per renewal instead')
})

t.test('the S3 break-even, and the result table', async t => {
  near(t, s3BreakEvenKb(), (0.005 / 1000 + 0.0004 / 1000) / (0.625 / 1e6 + 0.125 / 1e6 / 4), 'a PUT and a GET against 1 KB write units and 4 KB read units')
  t.ok(s3BreakEvenKb() > 8 && s3BreakEvenKb() < 8.5, `about 8 KB (${s3BreakEvenKb().toFixed(1)})`)
  const table = resultTable([4, 16, 512])
  t.match(table, /\| 4 KB \|[^\n]*\| DynamoDB \|/)
  t.match(table, /\| 512 KB \|[^\n]*\| S3 \|/)
})

t.test('the tables and the chart show every length and every term', async t => {
  const table = costTable([1, 60, 600])
  t.equal(table.split('\n').length, 5)
  t.match(table, /\| 1 min \| \$0\.\d{4} \| \$1\.\d{4} \(1\.(2\d|30)×\)/)
  t.match(table, /\| 10 min \|/)
  const terms = termsTable()
  for (const term of ['waiting', 'INIT', 'API Gateway', 'HTTP API', '64 KB', 'Idempotency-Key', 'progress', 'in DynamoDB', 'in S3', 'CloudWatch Logs', 'transfer out', 'renewals', 'backup cycles']) {
    t.match(terms, term, `the terms table has ${term}`)
  }
  // The default deployment's rows add up to its total.
  const rows = terms.split('\n').filter(line => /^\| (HTTP function|Lambda|worker|API Gateway, one|SQS: send|DynamoDB|CloudWatch|transfer)/.test(line))
  const sum = rows.reduce((total, line) => total + Number(/\$(\d+\.\d+) \|$/.exec(line)?.[1]), 0)
  t.ok(Math.abs(sum - pluginCost(60).total * 1000) < 0.0006, `the terms add up (${sum.toFixed(4)} against ${(pluginCost(60).total * 1000).toFixed(4)})`)
  const chart = costChart([1, 10, 600])
  t.equal(chart.match(/<polyline/g)?.length, 4)
  t.match(chart, /10 min/)
})
