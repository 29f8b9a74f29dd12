import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import t from 'tap'
import { redisQueue, redisStore } from '../../src/index.js'
import { startRedisServer } from '../../example/redis-server.js'
import { buildTestApp, closeTestApp } from '../helpers/app.js'
import { runChaosClients } from '../helpers/chaos.js'
import { int, pick, random, seedFromEnv } from '../helpers/random.js'

// Jobs through redisQueue and redisStore while the real server drops their connections
// (CLIENT KILL) and refuses writes (maxmemory 1 with noeviction: OOM errors), at seeded
// moments. A fixed seed in `npm run test:redis`; with CHAOS_JOBS set, a longer run with a new
// seed each time (printed; SEED=n replays its faults), as `npm run test:chaos` does for AWS.
// CHAOS_RATE: faults per second (default 11, one every 90 ms on average); TEST_LOG=file writes
// the app's log there, to follow a job through a run. A second run has jobs that outlast their
// lease more than twice (CHAOS_LONG_JOBS of them, default 8): their claims live on renewals
// made under the same faults, tried again until one gets through (src/job/lease.ts).
const jobs = Number(process.env.CHAOS_JOBS ?? 60)
const longJobs = Number(process.env.CHAOS_LONG_JOBS ?? 8)
const rate = Number(process.env.CHAOS_RATE ?? 11)
const seed = process.env.CHAOS_JOBS === undefined ? 11 : seedFromEnv()
const next = random(seed)
// Run directly (`CHAOS_JOBS=1000 node --import tsx test/redis/chaos.test.ts`), tap's default
// 30 s per test would cut a long run short.
t.setTimeout(15 * 60_000)
t.comment(`redis chaos: seed ${seed}, ${jobs} jobs, ${rate} faults/s`)

const redis = await startRedisServer()
t.teardown(async () => { await redis.close() })

const FAULTS = ['kill-normal', 'kill-pubsub', 'oom'] as const
// Long enough for a loaded machine: on two busy cores the event loop of this one process, which
// serves the clients and runs every job, lags by a second and more, and a lease renewed every
// third of 3 s lapsed with no fault of the store's.
const LEASE_SECONDS = 10
// The long jobs' lease, and how long they run: a short lease, so that the run takes seconds. A
// handful of jobs that mostly wait lag the event loop far less than the sixty above.
const LONG_LEASE_SECONDS = 3
const LONG_JOB_MS = 7_000

/** Injects `rate` faults a second until stopped, each 1/3 to 5/3 of the mean apart; counts them by kind. */
function injectFaults (control: Redis): { stop: () => Promise<void>, counts: Map<string, number> } {
  const counts = new Map<string, number>()
  const state = { stopped: false }
  const loop = (async () => {
    while (!state.stopped) {
      await new Promise(resolve => setTimeout(resolve, (1000 / rate) * (1 + 4 * next()) / 3))
      if (state.stopped) break
      const fault = pick(next, FAULTS)
      counts.set(fault, (counts.get(fault) ?? 0) + 1)
      if (fault === 'kill-normal') await control.call('CLIENT', 'KILL', 'TYPE', 'normal')
      else if (fault === 'kill-pubsub') await control.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
      else {
        await control.config('SET', 'maxmemory', '1')
        await new Promise(resolve => setTimeout(resolve, 20 + int(next, 80)))
        await control.config('SET', 'maxmemory', '0')
      }
    }
  })()
  return { stop: async () => { state.stopped = true; await loop }, counts }
}

t.test('under dropped connections and refused writes every accepted job ends with its exact response, its handler run once', async t => {
  const test = await buildTestApp({
    queue: redisQueue({ url: redis.url, retryDelaySeconds: 0.05, visibilityTimeoutSeconds: LEASE_SECONDS }),
    store: redisStore({ url: redis.url }),
    consume: true,
    concurrency: 8,
    waitSeconds: 1,
    leaseSeconds: LEASE_SECONDS
  })
  t.teardown(() => closeTestApp(test))
  const control = new Redis(redis.url)
  t.teardown(() => { control.disconnect() })
  const faults = injectFaults(control)
  const lag = monitorEventLoopDelay()
  lag.enable()

  const { ledger, jobsByName, rejected } = await runChaosClients(test, jobs, next)
  await faults.stop()
  lag.disable()
  // One run per accepted job: a write fails about every other time here, yet a worker holding a
  // result keeps its claim and tries on (src/job/finish.ts: a try every tenth of the lease, and
  // the renewals); only a store that refused every one of them would hand the job on.
  // Every run starts before its job's final response, so the count is complete here.
  const report = ledger.check(t, 1)
  t.equal(report.extraRuns, 0, 'no handler ran twice')
  // Reported, not checked: a request answered 503 runs only if its message went out with every
  // answer lost and the record's removal failed too.
  const phantomRuns = [...test.runs.keys()].filter(name => !jobsByName.has(name)).length
  t.comment(`report: ${JSON.stringify({ seed, ...report, phantomRuns, faults: Object.fromEntries(faults.counts), clientRetries: rejected, eventLoopLagMaxMs: Math.round(lag.max / 1e6) })}`)
})

t.test('jobs longer than their lease: renewals fail under the same faults, are tried again, and every job runs once, never two runs at a time', async t => {
  // Runs of each job whose signal has not aborted: a second one beside them is a job run twice at once.
  const live = new Map<string, Set<AbortSignal>>()
  let overlaps = 0
  const test = await buildTestApp({
    queue: redisQueue({ url: redis.url, name: 'long', retryDelaySeconds: 0.05, visibilityTimeoutSeconds: LONG_LEASE_SECONDS }),
    store: redisStore({ url: redis.url, prefix: 'long' }),
    consume: true,
    concurrency: longJobs,
    waitSeconds: 1,
    leaseSeconds: LONG_LEASE_SECONDS
  }, (app, _gates, count) => {
    app.post<{ Params: { name: string } }>('/long/:name', { longRunning: true }, async (request, reply) => {
      const { name } = request.params
      const signal = request.longRunning?.signal as AbortSignal
      count(name)
      const runs = live.get(name) ?? new Set()
      if ([...runs].some(run => !run.aborted)) overlaps += 1
      live.set(name, runs.add(signal))
      // A handler that pays no heed to its signal: the worst case for a run twice at once.
      await new Promise(resolve => setTimeout(resolve, LONG_JOB_MS))
      runs.delete(signal)
      return await reply.code(201).header('content-type', request.headers['content-type']).send(request.body)
    })
  })
  t.teardown(() => closeTestApp(test))
  const control = new Redis(redis.url)
  t.teardown(() => { control.disconnect() })
  const faults = injectFaults(control)
  const { ledger, jobsByName } = await runChaosClients(test, longJobs, next, name => `/long/${name}`)
  await faults.stop()
  const report = ledger.check(t, 1)
  t.equal(report.extraRuns, 0, 'no handler ran twice')
  t.equal(overlaps, 0, 'no job ran in two places at once')
  t.ok([...jobsByName.keys()].length >= longJobs, 'every long job was accepted')
  t.comment(`long jobs report: ${JSON.stringify({ seed, ...report, overlaps, faults: Object.fromEntries(faults.counts) })}`)
})
