import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { performance } from 'node:perf_hooks'
import { startRedisServer } from '../example/redis-server.js'
import { throughput } from './throughput.js'
import type { Backend } from './lib.js'

// The Redis throughput row of `npm run bench` alone, for quick comparisons:
// `npx tsx bench/redis-throughput.ts [runs] [jobs] [backend]`. Each run prints jobs/s with 128
// clients, this process's CPU per job, and redis-server's CPU and commands per job (INFO, which
// counts the commands that scripts call too). STATS=1 adds the commands by name; PROFILE=file
// writes a CPU profile of the runs after the first.
const runs = Number(process.argv[2] ?? 3)
const jobs = Number(process.argv[3] ?? 3000)
const backend = (process.argv[4] ?? 'redis') as Backend
const redis = await startRedisServer()
process.env.BENCH_REDIS_URL = redis.url
const cli = (...args: string[]): string => execFileSync('redis-cli', ['-p', String(redis.port), ...args]).toString()
const cpu = (): number => {
  const match = /used_cpu_sys:([\d.]+)\s+used_cpu_user:([\d.]+)/.exec(cli('info', 'cpu'))
  return match === null ? Number.NaN : Number(match[1]) + Number(match[2])
}
// The main thread's time on a CPU (ns), apart from the GC's and libuv's helper threads.
const mainThread = (): number => Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0])
const session = new Session()
session.connect()
for (let run = 0; run < runs; run++) {
  if (run === 1 && process.env.PROFILE !== undefined) {
    await session.post('Profiler.enable')
    await session.post('Profiler.start')
  }
  cli('config', 'resetstat')
  const before = cpu()
  const main = mainThread()
  const loop = performance.eventLoopUtilization()
  const row = await throughput(undefined as never, backend, 128, jobs)
  const mainMs = (mainThread() - main) / 1e6 / jobs
  const busy = performance.eventLoopUtilization(loop).utilization
  const redisMs = (cpu() - before) * 1000 / jobs
  let calls = 0
  const byName: string[] = []
  for (const line of cli('info', 'commandstats').split('\n')) {
    const match = /cmdstat_(\w+):calls=(\d+),usec=(\d+)/.exec(line)
    if (match === null) continue
    calls += Number(match[2])
    byName.push(`${match[1]} ${(Number(match[2]) / jobs).toFixed(2)} (${(Number(match[3]) / Number(match[2])).toFixed(1)} µs)`)
  }
  console.log(`${backend} run ${run}: ${row.jobsPerSecond.toFixed(0)} jobs/s, this process ${row.cpuMsPerJob.toFixed(2)} ms CPU/job (main thread ${mainMs.toFixed(2)}, event loop busy ${(busy * 100).toFixed(0)} %), redis-server ${redisMs.toFixed(3)} ms CPU/job, ${(calls / jobs).toFixed(2)} commands/job`)
  if (process.env.STATS !== undefined) console.log(`  ${byName.sort().join(', ')}`)
}
if (process.env.PROFILE !== undefined) {
  const { profile } = await session.post('Profiler.stop')
  writeFileSync(process.env.PROFILE, JSON.stringify(profile))
}
session.disconnect()
await redis.close()
