import type { Emulators } from '../example/emulators.js'
import { benchApp, createQueue, listen, percentile, timedCurl, timedFetch } from './lib.js'
import { seedSchemeApp } from './seed-scheme.js'
import { startWorkerProcess } from './worker-process.js'

export interface DeliveryRow {
  scheme: string
  seconds: number
  p50: number
  p95: number
  max: number
  hops: number
}

/**
 * Delivery delay: how long after the job's end the client holds the result (total time minus
 * job time), with waitSeconds 1 so that jobs cross several hops. Clients of one row start a few
 * ms apart, so that job ends fall at different points of the wait and poll cycles.
 */
export async function delivery (emulators: Emulators, durations: number[], samples: number): Promise<DeliveryRow[]> {
  const embedded = await benchApp('embedded', undefined, { waitSeconds: 1 })
  // The app is its own worker (a container with consume: true): results are handed over in process.
  const aws = await benchApp('emulators', emulators, { waitSeconds: 1 })
  // The worker in another process (as a Lambda worker): results reach the waiting requests by polling.
  const queueUrl = await createQueue(emulators)
  const worker = await startWorkerProcess(emulators, queueUrl)
  const polled = await benchApp('emulators', emulators, { waitSeconds: 1, consume: false }, queueUrl)
  const seed = await seedSchemeApp()
  const seedUrl = await listen(seed)
  const schemes: Array<[string, string, typeof timedFetch]> = [
    ['ours, embedded, fetch', embedded.url, timedFetch],
    ['ours, embedded, curl -L', embedded.url, timedCurl],
    ['ours, emulators, fetch', aws.url, timedFetch],
    ['ours, emulators, curl -L', aws.url, timedCurl],
    ['ours, emulators, worker elsewhere, fetch', polled.url, timedFetch],
    ['ours, emulators, worker elsewhere, curl -L', polled.url, timedCurl],
    ['seed scheme, fetch', seedUrl, timedFetch]
  ]
  const rows: DeliveryRow[] = []
  for (const seconds of durations) {
    const results = await Promise.all(schemes.map(async ([scheme, url, timed]) => {
      const runs = await Promise.all(Array.from({ length: samples }, async (_, i) => {
        await new Promise(resolve => setTimeout(resolve, i * 37))
        const result = await timed(`${url}/sleep?ms=${seconds * 1000}`)
        if (result.status !== 200) throw new Error(`${scheme}: ${result.status}`)
        return result
      }))
      const delays = runs.map(run => run.ms - seconds * 1000)
      return { scheme, seconds, p50: percentile(delays, 50), p95: percentile(delays, 95), max: Math.max(...delays), hops: percentile(runs.map(run => run.hops), 50) }
    }))
    rows.push(...results)
  }
  await Promise.all([embedded.app.close(), aws.app.close(), polled.app.close(), seed.close()])
  await worker.close()
  return rows
}
