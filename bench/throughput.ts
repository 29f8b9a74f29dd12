import type { Emulators } from '../example/emulators.js'
import { benchApp, type Backend } from './lib.js'

export interface ThroughputRow {
  backend: Backend
  concurrency: number
  jobs: number
  jobsPerSecond: number
  cpuMsPerJob: number
}

/**
 * Zero-delay jobs end to end (accept, queue, run, store, hand over) by `concurrency` clients
 * at once. Client and server share this process: CPU per job includes the client's share.
 */
export async function throughput (emulators: Emulators, backend: Backend, concurrency: number, jobs: number): Promise<ThroughputRow> {
  const { app, url } = await benchApp(backend, emulators, { waitSeconds: 10, pollIntervalMs: 20 })
  let next = 0
  const cpu = process.cpuUsage()
  const start = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < jobs) {
      next += 1
      const response = await fetch(`${url}/sleep?ms=0`)
      if (response.status !== 200) throw new Error(`status ${response.status}`)
      await response.arrayBuffer()
    }
  }))
  const seconds = (performance.now() - start) / 1000
  const used = process.cpuUsage(cpu)
  await app.close()
  return { backend, concurrency, jobs, jobsPerSecond: jobs / seconds, cpuMsPerJob: (used.user + used.system) / 1000 / jobs }
}
