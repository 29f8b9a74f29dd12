import type { Emulators } from '../example/emulators.js'
import { benchApp, type Backend } from './lib.js'
import { startExampleServer } from './server.js'

export interface ThroughputRow {
  backend: Backend | 'embedded, own process'
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
  const row = await drive(url, concurrency, jobs, '/sleep?ms=0')
  await app.close()
  return { backend, concurrency, ...row }
}

/**
 * The same against the example server in a process of its own (`npm start`, embedded
 * default): the clients no longer share the server's core, as in production.
 */
export async function throughputSeparate (concurrency: number, jobs: number): Promise<ThroughputRow> {
  const server = await startExampleServer({ WAIT_SECONDS: '10' })
  try {
    return { backend: 'embedded, own process', concurrency, ...await drive(server.url, concurrency, jobs, '/payload?delay=0') }
  } finally {
    server.child.kill('SIGKILL')
  }
}

async function drive (url: string, concurrency: number, jobs: number, path: string): Promise<{ jobs: number, jobsPerSecond: number, cpuMsPerJob: number }> {
  let next = 0
  const cpu = process.cpuUsage()
  const start = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < jobs) {
      next += 1
      const response = await fetch(`${url}${path}`)
      if (response.status !== 200) throw new Error(`status ${response.status}`)
      await response.arrayBuffer()
    }
  }))
  const seconds = (performance.now() - start) / 1000
  const used = process.cpuUsage(cpu)
  return { jobs, jobsPerSecond: jobs / seconds, cpuMsPerJob: (used.user + used.system) / 1000 / jobs }
}
