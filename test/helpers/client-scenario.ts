import type { Test } from 'tap'
import { fetchLongRunning, type LongRunningProgress } from '../../src/client/index.js'
import { startDropProxy } from './drop-proxy.js'
import { randomBody } from './random.js'

/** A real fetch that also hands over the response of every `DELETE` it sends. */
export function recordingFetch (): { fetch: (request: Request) => Promise<Response>, deleted: Promise<Response> } {
  let resolveDeleted = (_response: Response): void => {}
  const deleted = new Promise<Response>(resolve => { resolveDeleted = resolve })
  return {
    deleted,
    async fetch (request) {
      const response = await fetch(request)
      if (request.method === 'DELETE') resolveDeleted(response.clone())
      return response
    }
  }
}

/**
 * The client's promises against the example at `url` (issue 15's Done-when): a 4 s job with
 * rising progress, 1 MiB of binary echoed, an abort after 1 s that cancels the job, and a first
 * answer lost on the way (through a proxy that drops it) that still runs the handler once.
 */
export async function clientScenario (t: Test, url: string, { handlerStops = true } = {}): Promise<void> {
  const stats = async (): Promise<{ executions: number, running: number }> => await (await fetch(`${url}/stats`)).json() as { executions: number, running: number }
  const executions = async (): Promise<number> => (await stats()).executions
  const running = async (): Promise<number> => (await stats()).running

  await t.test('GET /payload?delay=4: 200, the JSON, rising progress', async t => {
    const seen: LongRunningProgress[] = []
    const response = await fetchLongRunning(`${url}/payload?delay=4`, {}, { onProgress: progress => seen.push(progress) })
    t.equal(response.status, 200)
    t.same(await response.json(), { MESSAGE: 'It took 4 seconds to generate this.' })
    const fractions = seen.flatMap(progress => progress.fraction === undefined ? [] : [progress.fraction])
    t.ok(fractions.length >= 2, `progress reported ${fractions.length} times: ${fractions.join(' ')}`)
    t.ok(fractions.every((fraction, i) => i === 0 || fraction >= (fractions[i - 1] as number)), 'never falling')
    t.ok((fractions.at(-1) as number) > (fractions[0] as number), 'rising')
    t.ok(seen.every(progress => progress.location.startsWith(`${url}/async-response/${progress.id}`)), 'the job\'s absolute URL')
  })

  await t.test('POST /echo?delay=2 with 1 MiB of binary: 201 and the exact bytes', async t => {
    const body = randomBody(1024 * 1024)
    const response = await fetchLongRunning(`${url}/echo?delay=2`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } })
    t.equal(response.status, 201)
    t.equal(response.headers.get('x-echo'), '1')
    t.ok(Buffer.from(await response.arrayBuffer()).equals(body), 'byte for byte')
  })

  for (const afterMs of [50, 1500]) {
    await t.test(`aborting /payload?delay=30 after ${afterMs} ms rejects with AbortError and cancels the job${handlerStops ? ', its handler stopped within 3 s' : ''}`, async t => {
      const controller = new AbortController()
      const recording = recordingFetch()
      const timer = setTimeout(() => controller.abort(), afterMs)
      t.teardown(() => clearTimeout(timer))
      const aborted = new Promise<number>(resolve => controller.signal.addEventListener('abort', () => resolve(Date.now())))
      await t.rejects(fetchLongRunning(`${url}/payload?delay=30`, {}, { signal: controller.signal, fetch: recording.fetch }), { name: 'AbortError' })
      // The DELETE goes out once the first answer names the job (its wait is at most 2 s).
      const deleted = await recording.deleted
      t.equal(deleted.status, 204)
      const job = await fetch(deleted.url)
      t.equal(job.status, 409)
      t.match(await job.json(), { code: 'FST_LONG_RUNNING_JOB_CANCELLED' })
      // The handler's signal aborts in the process that runs it, at once (a Lambda worker runs on,
      // its result discarded: docs/http.md).
      if (!handlerStops) return
      const abortedAt = await aborted
      while (await running() > 0 && Date.now() - abortedAt < 3000) await new Promise(resolve => setTimeout(resolve, 50))
      t.equal(await running(), 0, 'nothing running within 3 s of the abort')
    })
  }

  await t.test('a first answer lost on the way: the retry, with the same key, runs nothing again', async t => {
    const proxy = await startDropProxy(t, url)
    const before = await executions()
    const body = randomBody(3000)
    const response = await fetchLongRunning(`${proxy.url}/echo?delay=1`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } })
    await proxy.dropped
    t.equal(response.status, 201)
    t.ok(Buffer.from(await response.arrayBuffer()).equals(body))
    t.equal(await executions(), before + 1, 'the handler ran once')
  })
}
