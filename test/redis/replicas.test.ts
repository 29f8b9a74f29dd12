import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { startRedisServer } from '../../example/redis-server.js'
import { childProcesses, listeningUrl } from '../helpers/child.js'
import { randomBody } from '../helpers/random.js'
import { startRoundRobin } from '../helpers/round-robin.js'

// Two `npm start` processes on one Redis behind a round-robin proxy (no stickiness): every
// request, hop included, lands on whichever comes next. Issue 27's "Done when".
const redis = await startRedisServer()
t.teardown(async () => { await redis.close() })
const start = childProcesses(t, { REDIS_URL: redis.url, PORT: '0', HOST: '127.0.0.1', WAIT_SECONDS: '1', JOBS_LEASE_SECONDS: '3' })
const curl = promisify(execFile)
const dir = mkdtempSync(join(tmpdir(), 'flr-replicas-'))
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })

const stats = async (url: string): Promise<{ executions: number, running: number }> => await (await fetch(`${url}/stats`)).json() as { executions: number, running: number }

/** At most `limit` of `tasks` at once. */
async function inBatches<T> (tasks: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const results: T[] = []
  let next = 0
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < tasks.length) {
      const i = next++
      results[i] = await (tasks[i] as () => Promise<T>)()
    }
  }))
  return results
}

t.test('200 jobs through curl -L and fetch, hops landing on both replicas: every answer exact', async t => {
  const replicas = [start('example/server.ts'), start('example/server.ts')]
  const urls = await Promise.all(replicas.map(listeningUrl))
  const proxy = await startRoundRobin(t, urls)
  const check = async (i: number): Promise<string | undefined> => {
    const viaCurl = i % 2 === 0
    if (i % 4 < 2) {
      // GET /payload: the route's JSON, its delay as given.
      const delay = `1.${i}`
      const expected = `{"MESSAGE":"It took ${delay} seconds to generate this."}`
      const body = viaCurl
        ? (await curl('curl', ['-sS', '-L', '--fail-with-body', `${proxy.url}/payload?delay=${delay}`])).stdout
        : await (await fetch(`${proxy.url}/payload?delay=${delay}`)).text()
      return body === expected ? undefined : `job ${i}: ${body}`
    }
    // POST /echo: its own bytes back, with its status and headers.
    const bytes = randomBody(1 + (i * 7919) % (96 * 1024))
    if (viaCurl) {
      const file = join(dir, `in-${i}`)
      writeFileSync(file, bytes)
      const { stdout } = await curl('curl', ['-sS', '-L', '-D', '-', '-o', join(dir, `out-${i}`), '-H', 'content-type: application/octet-stream', '--data-binary', `@${file}`, `${proxy.url}/echo?delay=1`], { encoding: 'utf8' })
      const ok = /HTTP\/1\.1 201/.test(stdout) && /x-echo: 1/i.test(stdout) && readFileSync(join(dir, `out-${i}`)).equals(bytes)
      return ok ? undefined : `job ${i} (curl): ${stdout.slice(-300)}`
    }
    const response = await fetch(`${proxy.url}/echo?delay=1`, { method: 'POST', body: bytes, headers: { 'content-type': 'application/octet-stream' } })
    const echoed = Buffer.from(await response.arrayBuffer())
    return response.status === 201 && response.headers.get('x-echo') === '1' && echoed.equals(bytes) ? undefined : `job ${i} (fetch): ${response.status}`
  }
  const wrong = (await inBatches(Array.from({ length: 200 }, (_, i) => async () => await check(i)), 40)).filter(error => error !== undefined)
  t.same(wrong, [], 'every answer exact')
  t.ok(proxy.sent.every(sent => sent.hops > 0), `hops on both: ${JSON.stringify(proxy.sent)}`)
  const runs = await Promise.all(urls.map(stats))
  t.equal(runs.reduce((sum, { executions }) => sum + executions, 0), 200, `one run per job: ${JSON.stringify(runs)}`)
  t.ok(runs.every(({ executions }) => executions > 0), 'both ran jobs')

  // The same Idempotency-Key sent to both at once: one run, the same answer twice.
  const body = randomBody(5000)
  const keyed = async (url: string): Promise<Response> => await fetch(`${url}/echo?delay=1`, {
    method: 'POST', body, headers: { 'content-type': 'application/octet-stream', 'idempotency-key': '"both-at-once"' }
  })
  const answers = await Promise.all(urls.map(keyed))
  for (const answer of answers) {
    t.equal(answer.status, 201)
    t.ok(Buffer.from(await answer.arrayBuffer()).equals(body), 'the keyed job\'s own bytes')
  }
  const after = await Promise.all(urls.map(stats))
  t.equal(after.reduce((sum, { executions }) => sum + executions, 0), 201, 'the keyed POST ran once')
})

t.test('one replica SIGKILLed while jobs run: the other finishes every job, nothing lost', async t => {
  const replicas = [start('example/server.ts'), start('example/server.ts')]
  const urls = await Promise.all(replicas.map(listeningUrl))
  const proxy = await startRoundRobin(t, urls)
  const bodies = Array.from({ length: 20 }, (_, i) => randomBody(1000 + i * 1000))
  // Accepted at once (202 with the job's location), half on each replica.
  const locations = await Promise.all(bodies.map(async body => {
    const accepted = await fetch(`${proxy.url}/echo?delay=2`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream', prefer: 'respond-async' } })
    t.equal(accepted.status, 202)
    return accepted.headers.get('location') as string
  }))
  const [doomed, survivor] = replicas as [typeof replicas[0], typeof replicas[0]]
  t.ok((await stats(urls[0] as string)).running > 0, 'the first replica is running jobs')
  doomed.process.kill('SIGKILL')
  await once(doomed.process, 'exit')
  proxy.remove(urls[0] as string)
  const started = Date.now()
  const answers = await Promise.all(locations.map(async location => await fetch(`${urls[1] as string}${location}`)))
  for (const [i, answer] of answers.entries()) {
    t.equal(answer.status, 201, `job ${i}`)
    t.ok(Buffer.from(await answer.arrayBuffer()).equals(bodies[i] as Buffer), `job ${i}: its own bytes`)
  }
  t.ok(survivor.process.exitCode === null)
  t.comment(`the survivor delivered every job ${Date.now() - started} ms after the kill (lease 3 s, job 2 s)`)
})
