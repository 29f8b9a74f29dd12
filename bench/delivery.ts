import type { Emulators } from '../example/emulators.js'
import { benchApp, createQueue, listen, percentile, timedCurl, timedFetch } from './lib.js'
import { seedSchemeApp } from './seed-scheme.js'
import { startWorkerProcess } from './worker-process.js'

export interface DeliveryRow {
  scheme: string
  seconds: number
  /** Delivery delay: from the job's end (its handler returned) to the client holding the answer. */
  p50: number
  p95: number
  max: number
  /** Overhead: the client's total time minus the job's length (queueing and start included), median. */
  overheadP50: number
  hops: number
}

/**
 * Between the starts of a row's clients: jobs then end at different points of the wait and poll
 * cycles (it is prime to the 85 ms poll interval), and the clients, curl processes among them,
 * overlap less on the bench's 2 cores than real clients on other machines would not at all.
 */
const SPACING_MS = 97

/**
 * Delivery delay: how long after the job's end (its handler returned) the client holds the
 * result; and the overhead: the client's total time minus the job's length (queueing and the
 * job's start included), with waitSeconds 1 so that jobs cross several hops.
 */
export async function delivery (emulators: Emulators, durations: number[], samples: number): Promise<DeliveryRow[]> {
  const embedded = await benchApp('embedded', undefined, { waitSeconds: 1 })
  // The app is its own worker (a container with consume: true): results are handed over in process.
  const aws = await benchApp('emulators', emulators, { waitSeconds: 1 })
  // The worker in another process (as a Lambda worker): results reach the waiting requests by polling.
  const queueUrl = await createQueue(emulators)
  const worker = await startWorkerProcess(emulators, queueUrl)
  const polled = await benchApp('emulators', emulators, { waitSeconds: 1, consume: false }, queueUrl)
  // Redis, the worker in another process: results reach the waiting requests by pub/sub.
  const redisQueueName = `bench-${process.pid}-elsewhere`
  const redisWorker = await startWorkerProcess('redis', redisQueueName)
  const redis = await benchApp('redis', undefined, { waitSeconds: 1, consume: false }, redisQueueName)
  const seed = await seedSchemeApp()
  const seedUrl = await listen(seed)
  const schemes: Array<[string, string, typeof timedFetch]> = [
    ['ours, embedded, fetch', embedded.url, timedFetch],
    ['ours, embedded, curl -L', embedded.url, timedCurl],
    ['ours, emulators, fetch', aws.url, timedFetch],
    ['ours, emulators, curl -L', aws.url, timedCurl],
    ['ours, emulators, worker elsewhere, fetch', polled.url, timedFetch],
    ['ours, emulators, worker elsewhere, curl -L', polled.url, timedCurl],
    ['ours, redis, worker elsewhere, fetch', redis.url, timedFetch],
    ['ours, redis, worker elsewhere, curl -L', redis.url, timedCurl],
    ['seed scheme, fetch', seedUrl, timedFetch]
  ]
  // A first job per scheme, not measured: each app's code paths compiled before they are timed.
  for (const [scheme, url, timed] of schemes) {
    const warm = await timed(`${url}/sleep?ms=0`)
    if (warm.status !== 200) throw new Error(`${scheme}: ${warm.status}`)
  }
  const rows: DeliveryRow[] = []
  // One scheme at a time: on 2 cores, the clients of every scheme at once (curl processes
  // among them) would measure their own contention for the CPU, not the delivery.
  for (const seconds of durations) {
    for (const [scheme, url, timed] of schemes) {
      const runs = await Promise.all(Array.from({ length: samples }, async (_, i) => {
        await new Promise(resolve => setTimeout(resolve, i * SPACING_MS))
        const result = await timed(`${url}/sleep?ms=${seconds * 1000}`)
        if (result.status !== 200) throw new Error(`${scheme}: ${result.status}`)
        return result
      }))
      const delays = runs.map(run => run.afterEndMs)
      const overheads = runs.map(run => run.ms - seconds * 1000)
      rows.push({
        scheme,
        seconds,
        p50: percentile(delays, 50),
        p95: percentile(delays, 95),
        max: Math.max(...delays),
        overheadP50: percentile(overheads, 50),
        hops: percentile(runs.map(run => run.hops), 50)
      })
    }
  }
  await Promise.all([embedded.app.close(), aws.app.close(), polled.app.close(), redis.app.close(), seed.close()])
  await Promise.all([worker.close(), redisWorker.close()])
  return rows
}
