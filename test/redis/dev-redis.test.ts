import t from 'tap'
import { childProcesses, follow, listeningUrl, startCommand, stopChild, type Child } from '../helpers/child.js'

// `npm run dev:redis` (CONTRACT): a redis-server of its own on a free loopback port, the example
// on it, and the `export REDIS_URL=…` line it prints: pasted into another terminal, `npm run
// worker` and a second `npm start` share its jobs.
t.test('npm run dev:redis: its export line, pasted into a shell, points npm run worker and npm start at its redis-server', async t => {
  const start = childProcesses(t)
  const devRedis = start('example/dev-redis.ts', { PORT: '0', HOST: '127.0.0.1', WAIT_SECONDS: '1' })
  const devUrl = await listeningUrl(devRedis)
  await devRedis.waitFor(line => typeof line.msg === 'string' && line.msg.startsWith('redis-server ready'))
  const pasted = devRedis.text.filter(line => line.startsWith('export ')).join('\n')
  t.match(pasted, /^export REDIS_URL='redis:\/\/127\.0\.0\.1:\d+'$/)

  const children: Child[] = []
  t.teardown(() => { for (const child of children) child.process.kill('SIGKILL') })
  const terminal = (script: string, env: Record<string, string> = {}): Child => {
    const child = startCommand('sh', ['-c', `${pasted}\nexec "${process.execPath}" --import tsx ${script}`], env)
    children.push(child)
    return child
  }
  const worker = terminal('example/worker.ts')
  const server = terminal('example/server.ts', { PORT: '0', HOST: '127.0.0.1', WAIT_SECONDS: '1' })
  await worker.waitFor(line => line.msg === 'worker started')
  const url = await listeningUrl(server)
  const response = await follow(`${url}/payload?delay=1.5`)
  t.equal(response.status, 200, 'a job accepted by the second npm start, run by one of the three')
  t.equal(await response.text(), '{"MESSAGE":"It took 1.5 seconds to generate this."}')
  // Its 303 may be followed at the first process as well: the job lives in Redis, not in a process.
  const hopped = await fetch(`${url}/payload?delay=1.5`, { redirect: 'manual' })
  t.equal(hopped.status, 303)
  const elsewhere = await follow(devUrl + String(hopped.headers.get('location')))
  t.equal(await elsewhere.text(), '{"MESSAGE":"It took 1.5 seconds to generate this."}')
  t.equal(await stopChild(worker), 0)
  t.equal(await stopChild(server), 0)
  t.equal(await stopChild(devRedis), 0)
})
