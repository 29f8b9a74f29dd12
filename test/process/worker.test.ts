import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { promisify } from 'node:util'
import t from 'tap'
import { startEmulators } from '../../example/emulators.js'
import { childProcesses, follow, listeningUrl, stopChild, type Child } from '../helpers/child.js'
import { randomBody } from '../helpers/random.js'

// `npm start` and `npm run worker` against the emulators, each in its own process; a worker
// killed with SIGKILL mid-job is replaced, and every accepted job still gets its exact response.
// A worker started without a queue, a table or a region exits at once, saying which.
const emulators = await startEmulators()
t.teardown(() => emulators.close())
// Short leases: a dead worker's jobs are taken over in seconds, not the default half minute.
const start = childProcesses(t, { ...emulators.env, JOBS_LEASE_SECONDS: '3' })

/** Job runs a worker has started: the replayed requests it logged. */
const jobRuns = (child: Child): number =>
  child.lines.filter(line => (line.req as { url?: string } | undefined)?.url === '/echo?delay=2').length

t.test('a worker killed mid-job is replaced and every job still completes with its exact response', async t => {
  const server = start('example/server.ts', { PORT: '0', HOST: '127.0.0.1', WAIT_SECONDS: '5' })
  const url = await listeningUrl(server)
  const first = start('example/worker.ts')
  await first.waitFor(line => line.msg === 'worker started')

  const bodies = [randomBody(1000), randomBody(300 * 1024), Buffer.from('plain text')]
  const responses = bodies.map(async body => await follow(`${url}/echo?delay=2`, {
    method: 'POST', body, headers: { 'content-type': 'application/octet-stream' }
  }))
  // Every job is running on the first worker (2 s each): then it dies without a word.
  await first.waitFor(() => jobRuns(first) === bodies.length)
  first.process.kill('SIGKILL')
  await once(first.process, 'exit')

  const second = start('example/worker.ts')
  await second.waitFor(line => line.msg === 'worker started')
  for (const [i, pending] of responses.entries()) {
    const response = await pending
    t.equal(response.status, 201, `job ${i}`)
    t.ok(Buffer.from(await response.arrayBuffer()).equals(bodies[i] as Buffer), `job ${i}: its own bytes`)
  }
  t.equal(jobRuns(second), bodies.length, 'the replacement ran every job again')

  t.equal(await stopChild(second), 0, 'a worker stops cleanly on SIGTERM')
})

t.test('a worker (or npm start) without what it needs says what to set and exits 1 at start, instead of retrying forever', async t => {
  // No AWS config file to find a region in: the environment is all there is.
  const base = { PATH: process.env.PATH ?? '', AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent' }
  const attempt = async (env: Record<string, string>, script = 'example/worker.ts'): Promise<{ code: unknown, stderr: string }> =>
    await promisify(execFile)(process.execPath, ['--import', 'tsx', script], { env: { ...base, ...env }, timeout: 30_000 })
      .then(({ stderr }) => ({ code: 0, stderr }), (error: { code: unknown, stderr: string }) => ({ code: error.code, stderr: error.stderr }))
  const [nothing, sqsHalf, redisBad, server] = await Promise.all([
    attempt({}),
    attempt({ JOBS_QUEUE_URL: emulators.queueUrl }),
    attempt({ REDIS_URL: '127.0.0.1:6379' }),
    // npm start on SQS and DynamoDB, without a region: the same check, the same exit.
    attempt({ JOBS_QUEUE_URL: emulators.queueUrl, JOBS_TABLE: emulators.tableName, PORT: '0' }, 'example/server.ts')
  ])
  t.equal(server.code, 1)
  t.match(server.stderr, /^npm start cannot start:\n- no AWS region: set AWS_REGION/m)
  t.equal(nothing.code, 1)
  t.match(nothing.stderr, /^npm run worker cannot start:\n- no queue: set REDIS_URL .*, or JOBS_QUEUE_URL and JOBS_TABLE/)
  t.equal(sqsHalf.code, 1)
  t.match(sqsHalf.stderr, /^- JOBS_TABLE is not set/m, 'the table')
  t.match(sqsHalf.stderr, /^- no AWS region: set AWS_REGION/m, 'the region (the SDK said `Region is missing` once a second)')
  t.notMatch(sqsHalf.stderr, /JOBS_QUEUE_URL is not set/)
  t.equal(redisBad.code, 1)
  t.match(redisBad.stderr, /^- REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL .*, got "127\.0\.0\.1:6379"$/m)
})
