import { writeFileSync } from 'node:fs'
import { deliveryChart } from './chart.js'
import { startEmulatorsProcess } from './emulators-process.js'
import { cost } from './cost.js'
import { containerCost, pluginCost, pollReads, PRICES, s3BreakEvenKb, synchronousCost } from './cost-model.js'
import { costChart, costTable, resultTable, termsTable } from './cost-tables.js'
import { delivery } from './delivery.js'
import { bounded } from './bounded.js'
import { floodRow } from './flood.js'
import { largeResult } from './large-result.js'
import { redisWaitReads } from './redis-reads.js'
import { upload } from './upload.js'
import { memory } from './memory.js'
import { ordinary } from './ordinary.js'
import { throughput, throughputSeparate, type ThroughputRow } from './throughput.js'
import { startRedisServer } from '../example/redis-server.js'

// `npm run bench` (`-- --long` adds the seed's 40 s job): every figure next to its target,
// bench/results.json and bench/delivery.svg. See bench/README.md.
const long = process.argv.includes('--long')
const emulators = await startEmulatorsProcess()
const durations = [0.05, 0.5, 2, 5, 12, ...(long ? [40] : [])]
const check = (ok: boolean): string => ok ? 'met' : 'MISSED'
const ms = (value: number): string => `${value.toFixed(0)} ms`

// The Redis rows: a redis-server of the run's own (Debian's `redis-server` on the PATH).
const redis = await startRedisServer()
process.env.BENCH_REDIS_URL = redis.url
console.log('delivery delay...')
const rows = await delivery(emulators, durations, 8)
const redisReads = await redisWaitReads()
console.log('ordinary routes...')
const plain = await ordinary(3, 3)
console.log('throughput...')
const throughputs: ThroughputRow[] = []
for (const concurrency of [1, 16, 128]) {
  throughputs.push(await throughputSeparate(concurrency, concurrency === 1 ? 1000 : 5000))
  throughputs.push(await throughput(emulators, 'embedded', concurrency, concurrency === 1 ? 500 : 3000))
  throughputs.push(await throughput(emulators, 'emulators', concurrency, concurrency === 1 ? 100 : 400))
  throughputs.push(await throughput(emulators, 'redis', concurrency, concurrency === 1 ? 500 : 3000))
}
console.log('AWS cost...')
const aws = await cost(emulators, 50, 200)
console.log('memory...')
const mem = await memory(1000)
const large = await largeResult(52_428_800)
console.log('upload...')
const uploaded = await upload(200 * 1024 * 1024)
console.log('bounded memory...')
const budgets = [await bounded(64, 500), await bounded(256, 500), await bounded('none', 500)]
console.log('one caller\'s flood...')
const floods = [await floodRow(false, 50), await floodRow(true, 50)]
await emulators.close()
await redis.close()

const seedOverhead = (seconds: number): number => rows.find(row => row.scheme === 'seed scheme, fetch' && row.seconds === seconds)?.overheadP50 ?? Number.NaN
console.log('\n## Delivery delay after the job\'s end, and overhead (client time − job length), waitSeconds 1')
console.log('| scheme | job | delay p50 | p95 | max | target p95 | overhead p50 | ratio to seed | hops |')
console.log('|---|---|---|---|---|---|---|---|---|')
for (const row of rows) {
  const target = 100 + row.seconds * 10
  const ours = row.scheme.startsWith('ours')
  console.log(`| ${row.scheme} | ${row.seconds} s | ${ms(row.p50)} | ${ms(row.p95)} | ${ms(row.max)} | ${ours ? `≤ ${ms(target)}: ${check(row.p95 <= target)}` : ''} | ${ms(row.overheadP50)} | ${ours ? (Math.max(0, row.overheadP50) / seedOverhead(row.seconds)).toFixed(3) : ''} | ${row.hops} |`)
}
const totalSeed = rows.filter(row => row.scheme === 'seed scheme, fetch').reduce((total, row) => total + row.overheadP50, 0)
const overheadRatios: Record<string, number> = {}
for (const scheme of ['ours, embedded, fetch', 'ours, emulators, fetch', 'ours, emulators, curl -L', 'ours, emulators, worker elsewhere, fetch', 'ours, emulators, worker elsewhere, curl -L', 'ours, redis, worker elsewhere, fetch', 'ours, redis, worker elsewhere, curl -L']) {
  const total = rows.filter(row => row.scheme === scheme).reduce((sum, row) => sum + Math.max(0, row.overheadP50), 0)
  overheadRatios[scheme] = total / totalSeed
  console.log(`Overhead over all job lengths, ${scheme} / seed: ${(total / totalSeed).toFixed(3)} (target ≤ 0.02: ${check(total / totalSeed <= 0.02)})`)
}
console.log(`Redis, one request waiting for a ${redisReads.jobSeconds} s job run by a worker elsewhere: ${redisReads.reads} store reads (target: the race check and the result, none while it waits: ${check(redisReads.reads <= 2)}); its commands ${JSON.stringify(redisReads.commands)}`)

console.log('\n## Ordinary route, requests/s (autocannon, 50 connections, interleaved)')
console.log(`bare Fastify ${plain.bare.toFixed(0)}, with the plugin ${plain.plugin.toFixed(0)}: ${(plain.ratio * 100).toFixed(1)} % (target ≥ 97 %: ${check(plain.ratio >= 0.97)})`)

console.log('\n## Throughput, zero-delay jobs end to end')
console.log('| backend | clients | jobs/s | CPU ms per job (this process: clients, and the server unless in its own) | target |')
console.log('|---|---|---|---|---|')
for (const row of throughputs) {
  const target = row.backend === 'emulators' ? 300 : row.backend === 'redis' ? 1000 : 2000
  console.log(`| ${row.backend} | ${row.concurrency} | ${row.jobsPerSecond.toFixed(0)} | ${row.cpuMsPerJob.toFixed(2)} | ${row.concurrency === 128 ? `≥ ${target}: ${check(row.jobsPerSecond >= target)}` : ''} |`)
}

console.log('\n## AWS requests per job (emulators, counted by an SDK middleware)')
console.log(JSON.stringify(aws.perJob))
console.log(`SQS sends per job ${aws.sqsSendsPerJob.toFixed(2)} (target ≤ 1: ${check(aws.sqsSendsPerJob <= 1)}); DynamoDB writes per job ${aws.dynamoWritesPerJob.toFixed(2)} (target ≤ 3: ${check(aws.dynamoWritesPerJob <= 3)}); reads per job ${aws.dynamoReadsPerJob.toFixed(2)}`)
console.log(`Polling reads per waiting second, one request: ${aws.pollReadsPerWaitingSecondOneWaiter.toFixed(1)} (target ≤ 10: ${check(aws.pollReadsPerWaitingSecondOneWaiter <= 10)})`)
console.log(`Polling reads per second with ${aws.pollReadsPerSecondManyWaiters.waiters} requests waiting: ${aws.pollReadsPerSecondManyWaiters.readsPerSecond.toFixed(1)} (${(aws.pollReadsPerSecondManyWaiters.readsPerSecond / aws.pollReadsPerSecondManyWaiters.waiters).toFixed(2)} per request)`)

const model = { tenSeconds: pollReads(10_000), tenMinutes: pollReads(600_000), hopReadsTenMinutes: pluginCost(600).counts.readUnits - pollReads(600_000) }
console.log(`DynamoDB reads of one waiting request: 10 s job ${aws.readsTenSecondJob.workerInProcess} measured (worker in process), ${aws.readsTenSecondJob.workerElsewhere} (worker elsewhere), ${model.tenSeconds} by the poller's schedule (target ≤ 80: ${check(Math.max(aws.readsTenSecondJob.workerElsewhere, model.tenSeconds) <= 80)}); 10 min job ${model.tenMinutes} by the schedule (target ≤ 450: ${check(model.tenMinutes <= 450)}), plus ${model.hopReadsTenMinutes} reads of its 303 hops at waitSeconds 25`)

console.log(`\n## What a job costs on Lambda (US dollars per 1,000 jobs, ${PRICES.region} list prices of ${PRICES.date}; bench/cost-model.ts)`)
const lengths = [1, 10, 60, 300, 600]
console.log(costTable(lengths))
const ratio = pluginCost(60).total / synchronousCost(60)
console.log(`\n1-minute job, client waiting, template's deployment: ${ratio.toFixed(2)}× the synchronous one (target ≤ 1.3: ${check(ratio <= 1.3)})`)
console.log('\n### A 1-minute job term by term, and what options add')
console.log(termsTable())
console.log('\n### Where a result body costs less')
console.log(resultTable([1, 4, 8, 16, 64, 256, 512, 4096]))
const costModel = {
  jobs: lengths.map(seconds => ({
    seconds,
    synchronous: synchronousCost(seconds),
    waiting: pluginCost(seconds),
    httpApi: pluginCost(seconds, { frontEnd: 'http' }),
    respondAsync: pluginCost(seconds, { respondAsync: true })
  })),
  s3BreakEvenKb: s3BreakEvenKb(),
  container900s: { typical: containerCost(900), worst: containerCost(900, { worst: true }) }
}

console.log('\n## Memory')
console.log(`example server with ${mem.clients} requests waiting: peak RSS ${mem.peakMiB.toFixed(0)} MiB (idle ${mem.idleMiB.toFixed(0)} MiB; target < 150 MB: ${check(mem.peakMiB * 1.048576 < 150)})`)
console.log(`worker (npm run worker) storing a 50 MiB result in S3: peak RSS ${large.peakMiB.toFixed(0)} MiB (idle ${large.idleMiB.toFixed(0)} MiB, ${large.warmMiB.toFixed(0)} MiB after a first 4 MiB result loaded the S3 SDK; the body held ${((large.peakMiB - large.warmMiB) / 50).toFixed(1)} times over that; target once: ${check(large.peakMiB - large.warmMiB <= 75)}), delivered in ${large.seconds.toFixed(1)} s`)
for (const [name, figures] of [['npm start (HTTP side alone)', uploaded.http], ['npm run dev:aws (one process)', uploaded.devAws]] as const) {
  const growth = figures.peakMiB - figures.warmMiB
  console.log(`200 MiB curl -L -F to POST /upload, ${name}: peak RSS ${figures.peakMiB.toFixed(0)} MiB (${figures.warmMiB.toFixed(0)} MiB after a first 8 MiB upload; +${growth.toFixed(0)} MiB, target < 64: ${check(growth < 64)}), answered in ${figures.seconds.toFixed(1)} s`)
}
console.log(`200 MiB curl -L --data-binary to POST /echo through npm run dev:aws: back byte for byte through the S3 result path in ${uploaded.echoSeconds.toFixed(1)} s`)

console.log('\n## Embedded default, 500 × 1 MiB POST /echo at once (respond-async), by memory budget')
console.log('| budget | accepted | refused (503) | exact bytes | gave way unread (410) | idle RSS | peak RSS |')
console.log('|---|---|---|---|---|---|---|')
for (const row of budgets) console.log(`| ${row.budgetMiB === 'none' ? 'none' : `${row.budgetMiB} MiB`} | ${row.accepted} | ${row.refused} | ${row.exact} | ${row.evicted} | ${row.idleMiB.toFixed(0)} MiB | ${row.peakMiB.toFixed(0)} MiB |`)

console.log('\n## A new client during one caller\'s flood (npm start, 256 MiB): 6 MiB results asked and never read, 22 uploads dripping')
console.log('| flood | new client\'s POST /echo, exact | p50 | max | unread results asked meanwhile | server peak RSS |')
console.log('|---|---|---|---|---|---|')
for (const row of floods) console.log(`| ${row.flood ? 'on' : 'off'} | ${row.exact} / ${row.requests} (target all: ${check(row.exact === row.requests)}) | ${ms(row.p50Ms)} | ${ms(row.maxMs)} | ${row.unreadAsked} | ${row.peakMiB.toFixed(0)} MiB |`)
const results = { date: new Date().toISOString(), node: process.version, delivery: rows, overheadRatios, redisReads, ordinary: plain, throughput: throughputs, cost: aws, reads: model, costModel, prices: PRICES, memory: mem, largeResult: large, upload: uploaded, bounded: budgets, floods }
writeFileSync('bench/results.json', JSON.stringify(results, null, 2) + '\n')
writeFileSync('bench/delivery.svg', deliveryChart(rows, ['ours, embedded, fetch', 'ours, emulators, fetch', 'ours, emulators, worker elsewhere, fetch', 'seed scheme, fetch']))
writeFileSync('bench/cost.svg', costChart([1, 2, 5, 10, 30, 60, 120, 300, 600]))
console.log('\nwrote bench/results.json, bench/delivery.svg and bench/cost.svg')
