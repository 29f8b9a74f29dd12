import t from 'tap'
import { startRedisServer } from '../../example/redis-server.js'
import { childProcesses, listeningUrl } from '../helpers/child.js'
import { randomBody } from '../helpers/random.js'

// redis-server restarted (append-only file on) while jobs run: every job is still delivered.
const redis = await startRedisServer(['--appendonly', 'yes', '--appendfsync', 'always'])
t.teardown(async () => { await redis.close() })
const start = childProcesses(t, { REDIS_URL: redis.url, PORT: '0', HOST: '127.0.0.1', WAIT_SECONDS: '1', JOBS_LEASE_SECONDS: '3' })

/** The job's answer, following 303s; a 503 (Redis away) is asked again after its Retry-After, as a client does. */
async function result (url: string): Promise<Response> {
  for (let tries = 0; ; tries++) {
    const response = await fetch(url)
    if (response.status !== 503 || tries === 30) return response
    await response.arrayBuffer()
    await new Promise(resolve => setTimeout(resolve, Number(response.headers.get('retry-after') ?? '1') * 1000))
  }
}

t.test('redis-server restarted during a run: every job still delivered, byte-exact', async t => {
  const replicas = [start('example/server.ts'), start('example/server.ts')]
  const urls = await Promise.all(replicas.map(listeningUrl))
  const bodies = Array.from({ length: 20 }, (_, i) => randomBody(500 + i * 3000))
  const locations = await Promise.all(bodies.map(async (body, i) => {
    const accepted = await fetch(`${urls[i % 2] as string}/echo?delay=2`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream', prefer: 'respond-async' } })
    t.equal(accepted.status, 202)
    return accepted.headers.get('location') as string
  }))
  await redis.stop()
  await redis.restart()
  const answers = await Promise.all(locations.map(async (location, i) => await result(`${urls[(i + 1) % 2] as string}${location}`)))
  for (const [i, answer] of answers.entries()) {
    t.equal(answer.status, 201, `job ${i}`)
    t.ok(Buffer.from(await answer.arrayBuffer()).equals(bodies[i] as Buffer), `job ${i}: its own bytes`)
  }
  const runs = await Promise.all(urls.map(async url => await (await fetch(`${url}/stats`)).json() as { executions: number }))
  t.comment(`runs: ${runs.map(run => run.executions).join(' + ')} for ${bodies.length} jobs`)
})
