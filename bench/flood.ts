import { flood } from '../test/helpers/flood.js'
import { randomBody } from '../test/helpers/random.js'
import { percentile } from './lib.js'
import { startExampleServer } from './server.js'

/** A new client's requests to `npm start` while one caller floods it, and without (issue 26, point 6). */
export interface FloodRow {
  flood: boolean
  requests: number
  /** New client's `POST /echo` of 64 KiB, waited for: 201 with its exact bytes. */
  exact: number
  p50Ms: number
  maxMs: number
  /** What the flood got meanwhile. */
  unreadAsked: number
  slowCut: number
  peakMiB: number
}

/**
 * The example server (`npm start`, embedded default, its 256 MiB budget) in its own process.
 * With `flooding`: one caller asks for 6 MiB results it never reads (four at a time, as the
 * issue's 46 in 5 s) and keeps 22 uploads of 6 MiB dripping a byte every 5 s; once it has asked
 * for twice the budget in results, a new client sends `requests` `POST /echo` one after another.
 */
export async function floodRow (flooding: boolean, requests: number): Promise<FloodRow> {
  const server = await startExampleServer({ LOG_LEVEL: 'fatal', WAIT_SECONDS: '25' })
  try {
    const floods = flooding ? flood(server.url, { resultBytes: 6 * 1024 * 1024, unreadConcurrency: 4, slowUploads: 22, slowAnnouncedBytes: 6 * 1024 * 1024, slowByteEveryMs: 5000 }) : undefined
    await floods?.unreadSent(92)
    const times: number[] = []
    let exact = 0
    for (let i = 0; i < requests; i++) {
      const body = randomBody(64 * 1024)
      const started = performance.now()
      const response = await fetch(`${server.url}/echo?delay=0`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } })
      const bytes = Buffer.from(await response.arrayBuffer())
      times.push(performance.now() - started)
      if (response.status === 201 && bytes.equals(body)) exact++
    }
    const counts = await floods?.stop()
    return { flood: flooding, requests, exact, p50Ms: percentile(times, 50), maxMs: Math.max(...times), unreadAsked: counts?.unreadAccepted ?? 0, slowCut: counts?.slowCut ?? 0, peakMiB: server.peakRssMiB() }
  } finally {
    server.child.kill('SIGKILL')
  }
}

// `npx tsx bench/flood.ts`: this part alone.
if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  for (const flooding of [false, true]) console.log(await floodRow(flooding, 50))
}
