import t from 'tap'
import { costChart, costTable, pluginCost, pollReads, PRICES, synchronousCost } from '../bench/cost-model.js'

// The cost table in docs/aws.md ("What a job costs on Lambda") is arithmetic: prices × counts.
// These are the counts and the sums, checked by hand for one job, and the shape of the rest.

t.test('a 10 s job whose client waits: every part priced by hand', async t => {
  const cost = pluginCost(10)
  t.same(cost.counts, { requests: 1, pollReads: pollReads(10_000), reads: pollReads(10_000), writeUnits: 3 })
  t.ok(cost.counts.pollReads <= 80, `${cost.counts.pollReads} polling reads`)
  const gbSeconds = (seconds: number): number => seconds * PRICES.lambdaGbSecond
  t.equal(cost.httpFunction, gbSeconds(10 + 0.02) + PRICES.lambdaRequest, '1 GB waits 10 s, plus 20 ms of handling')
  t.equal(cost.worker, gbSeconds(10) + PRICES.lambdaRequest)
  t.equal(cost.api, PRICES.apiRequest)
  t.equal(cost.sqs, 3 * PRICES.sqsRequest, 'send, receive, delete')
  t.equal(cost.dynamoReads, cost.counts.reads * PRICES.dynamoReadUnit, 'one read unit each: the item is under 4 KB')
  t.equal(cost.dynamoWrites, 3 * PRICES.dynamoWriteUnit, 'create, claim, complete, 1 KB each')
  t.equal(cost.total, cost.httpFunction + cost.worker + cost.api + cost.sqs + cost.dynamoReads + cost.dynamoWrites)
  t.equal(synchronousCost(10), gbSeconds(10.02) + PRICES.lambdaRequest + PRICES.apiRequest)
})

t.test('hops, respond-async, item sizes and memory change the counts as they should', async t => {
  const tenMinutes = pluginCost(600)
  t.equal(tenMinutes.counts.requests, 24, 'one request per 25 s wait')
  t.equal(tenMinutes.counts.reads, tenMinutes.counts.pollReads + 23, 'each 303 hop reads the job once')
  t.ok(tenMinutes.counts.pollReads <= 450)

  const async = pluginCost(600, { respondAsync: true })
  t.same(async.counts, { requests: 601, pollReads: 0, reads: 600, writeUnits: 3 }, 'a request a second, none waiting, no polling')
  t.ok(async.httpFunction < tenMinutes.httpFunction / 10, 'no function waits')

  const big = pluginCost(10, { itemKb: 3.5, memoryMb: 2048 })
  t.equal(big.counts.writeUnits, 12, 'writes billed per KB')
  t.equal(big.dynamoReads, big.counts.reads * PRICES.dynamoReadUnit, 'reads per 4 KB: still one unit')
  t.equal(big.worker, 10 * 2 * PRICES.lambdaGbSecond + PRICES.lambdaRequest)
  t.equal(pollReads(0), 1, 'a job done before the first read: that read')
  t.ok(pollReads(10_000, 10) > pollReads(10_000), 'a smaller pollIntervalMs reads more')

  for (const seconds of [1, 10, 60, 600]) {
    const ratio = pluginCost(seconds).total / synchronousCost(seconds)
    t.ok(ratio > 1.9 && ratio < 2.2, `${seconds} s: the waiting function doubles the bill (${ratio.toFixed(2)}×)`)
  }
})

t.test('the table and the chart show every length', async t => {
  const table = costTable([1, 60, 600])
  t.equal(table.split('\n').length, 5)
  t.match(table, /\| 1 min \| \$0\.\d{4} \|/)
  t.match(table, /\| 10 min \|/)
  const chart = costChart([1, 10, 600])
  t.equal(chart.match(/<polyline/g)?.length, 3)
  t.match(chart, /10 min/)
})
