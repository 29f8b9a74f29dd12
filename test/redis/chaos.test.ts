import { Redis } from 'ioredis'
import t from 'tap'
import { redisQueue, redisStore } from '../../src/index.js'
import { startRedisServer } from '../../example/redis-server.js'
import { buildTestApp, closeTestApp } from '../helpers/app.js'
import { Ledger } from '../helpers/ledger.js'
import { int, pick, random, seedFromEnv } from '../helpers/random.js'

// Jobs through redisQueue and redisStore while the real server drops their connections
// (CLIENT KILL) and refuses writes (maxmemory 1 with noeviction: OOM errors), at seeded
// moments. A fixed seed in `npm run test:redis`; with CHAOS_JOBS set, a longer run with a new
// seed each time (printed; SEED=n replays it), as `npm run test:chaos` does for AWS.
const jobs = Number(process.env.CHAOS_JOBS ?? 60)
const seed = process.env.CHAOS_JOBS === undefined ? 11 : seedFromEnv()
const next = random(seed)
t.comment(`redis chaos: seed ${seed}, ${jobs} jobs`)

const redis = await startRedisServer()
t.teardown(async () => { await redis.close() })

const FAULTS = ['kill-normal', 'kill-pubsub', 'oom'] as const

/** Injects a fault every 30 to 150 ms until stopped; counts them by kind. */
function injectFaults (control: Redis): { stop: () => Promise<void>, counts: Map<string, number> } {
  const counts = new Map<string, number>()
  const state = { stopped: false }
  const loop = (async () => {
    while (!state.stopped) {
      await new Promise(resolve => setTimeout(resolve, 30 + int(next, 120)))
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

t.test('under dropped connections and refused writes every accepted job ends with its exact response, run once', async t => {
  const test = await buildTestApp({
    queue: redisQueue({ url: redis.url, retryDelaySeconds: 0.05, visibilityTimeoutSeconds: 3 }),
    store: redisStore({ url: redis.url }),
    consume: true,
    concurrency: 8,
    waitSeconds: 1,
    leaseSeconds: 3
  })
  t.teardown(() => closeTestApp(test))
  const control = new Redis(redis.url)
  t.teardown(() => { control.disconnect() })
  const faults = injectFaults(control)

  const ledger = new Ledger()
  const jobsByName = new Map<string, string>()
  const rejected = { enqueue: 0, reads: 0 }
  const client = async (i: number): Promise<void> => {
    const payload = Buffer.from(`job ${i} `.repeat(1 + int(next, 40)))
    let location: string | undefined
    for (let tries = 0; location === undefined; tries++) {
      const name = `j${i}t${tries}`
      const response = await test.app.inject({ method: 'POST', url: `/job/${name}?open=1`, payload, headers: { 'content-type': 'application/x-chaos', prefer: 'respond-async' } })
      if (response.statusCode === 503) { rejected.enqueue += 1; continue }
      location = response.headers.location as string
      const id = /async-response\/([^?]+)/.exec(location)?.[1] as string
      ledger.accept(id, { status: 201, body: payload })
      jobsByName.set(name, id)
    }
    for (;;) {
      const response = await test.app.inject({ url: location })
      if (response.statusCode === 503) { rejected.reads += 1; continue }
      if (response.statusCode === 303 || response.statusCode === 202) { location = response.headers.location as string; continue }
      ledger.finished(/async-response\/([^?]+)/.exec(location)?.[1] as string, response.statusCode, response.rawPayload)
      return
    }
  }
  await Promise.all(Array.from({ length: jobs }, async (_, i) => await client(i)))
  await faults.stop()
  for (const [name, count] of test.runs) {
    const id = jobsByName.get(name)
    if (id === undefined) continue
    for (let run = 0; run < count; run++) ledger.ran(id)
  }
  const report = ledger.check(t, 3)
  const phantomRuns = [...test.runs.keys()].filter(name => !jobsByName.has(name)).length
  t.equal(report.extraRuns, 0, 'no extra runs')
  t.comment(`report: ${JSON.stringify({ seed, ...report, phantomRuns, faults: Object.fromEntries(faults.counts), clientRetries: rejected })}`)
})
