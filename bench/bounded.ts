import { randomBody } from '../test/helpers/random.js'
import { startExampleServer } from './server.js'

/** What a burst of uploads does to the embedded default with a memory budget (issue 16). */
export interface BoundedRow {
  budgetMiB: number | 'none'
  jobs: number
  accepted: number
  refused: number
  /** Accepted jobs whose result came back byte for byte, and those whose result gave way unread (410). */
  exact: number
  evicted: number
  idleMiB: number
  peakMiB: number
}

/**
 * The example server (`npm start`, embedded default) in its own process with `JOBS_MEMORY_MIB`:
 * `jobs` POST /echo of 1 MiB each at once, with `Prefer: respond-async` (no result is fetched
 * during the burst: beyond half the budget, unread results give way to later jobs as 410s); its
 * peak RSS; then every accepted result fetched and checked.
 */
export async function bounded (budgetMiB: number | 'none', jobs: number): Promise<BoundedRow> {
  // 'none': a budget no burst reaches, i.e. memory as it was before there was one.
  // Quiet: each refusal is a 503, which Fastify logs as an error.
  const server = await startExampleServer({ LOG_LEVEL: 'fatal', WAIT_SECONDS: '25', JOBS_MEMORY_MIB: String(budgetMiB === 'none' ? 1024 * 1024 : budgetMiB) })
  try {
    await (await fetch(`${server.url}/health`)).arrayBuffer()
    const idle = server.peakRssMiB()
    const bodies = Array.from({ length: jobs }, () => randomBody(1024 * 1024))
    const answers = await Promise.all(bodies.map(async body => {
      const response = await fetch(`${server.url}/echo?delay=0`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream', prefer: 'respond-async' } })
      await response.arrayBuffer()
      return { status: response.status, location: response.headers.get('location'), body }
    }))
    const peak = server.peakRssMiB()
    let exact = 0
    let evicted = 0
    for (const answer of answers.filter(answer => answer.status === 202)) {
      const result = await fetch(server.url + (answer.location ?? ''))
      const bytes = Buffer.from(await result.arrayBuffer())
      if (result.status === 201 && bytes.equals(answer.body)) exact++
      if (result.status === 410) evicted++
    }
    return {
      budgetMiB,
      jobs,
      accepted: answers.filter(answer => answer.status === 202).length,
      refused: answers.filter(answer => answer.status === 503).length,
      exact,
      evicted,
      idleMiB: idle,
      peakMiB: peak
    }
  } finally {
    server.child.kill('SIGKILL')
  }
}

// `npx tsx bench/bounded.ts`: this part alone.
if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  for (const budget of process.argv.slice(2).map(value => value === 'none' ? 'none' as const : Number(value))) console.log(await bounded(budget, 500))
}
