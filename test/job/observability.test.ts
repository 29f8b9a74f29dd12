import { Writable } from 'node:stream'
import Fastify from 'fastify'
import t from 'tap'
import longRunning, { type JobEndEvent } from '../../src/index.js'
import { untilAborted } from '../helpers/app.js'
import { FakeClock } from '../../src/testing/fake-clock.js'

/** An app whose log lines are kept (parsed), and whose ended jobs are recorded. */
async function observed (options: { onJobEnd?: (event: JobEndEvent) => void, timeoutSeconds?: number } = {}) {
  const lines: Array<Record<string, unknown>> = []
  const watchers = new Set<() => void>()
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); for (const watcher of watchers) watcher(); done() } })
  /** Resolves once a log line `match` accepts has been written. */
  const logged = async (match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => await new Promise(resolve => {
    const check = (): void => {
      const line = lines.find(match)
      if (line === undefined) return
      watchers.delete(check)
      resolve(line)
    }
    watchers.add(check)
    check()
  })
  const app = Fastify({ logger: { level: 'info', stream } })
  const clock = new FakeClock()
  await app.register(longRunning, { waitSeconds: 10, clock, ...options })
  app.get('/work', { longRunning: true }, async (request) => {
    request.log.info('working')
    return 'done'
  })
  app.get('/forever', { longRunning: { timeoutSeconds: 1 } }, async (request) => {
    await untilAborted(request.longRunning?.signal)
    return 'late'
  })
  // As a handler passing its signal to fetch or timers/promises does: the stop makes it throw.
  app.get('/throws', { longRunning: { timeoutSeconds: 1 } }, async (request) => {
    await untilAborted(request.longRunning?.signal)
    throw Object.assign(new Error('The operation was aborted'), { name: 'AbortError', cause: request.longRunning?.signal.reason })
  })
  app.get('/fails', { longRunning: true }, async () => { throw new Error('boom') })
  t.teardown(() => app.close())
  return { app, lines, clock, logged }
}

t.test('a job\'s log lines carry its id, its attempt and the original x-request-id', async t => {
  const { app, lines } = await observed()
  const response = await app.inject({ url: '/work', headers: { 'x-request-id': 'apigw-123' } })
  t.equal(response.body, 'done')
  const working = lines.find(line => line.msg === 'working')
  t.match(working, { jobId: /^[0-9a-f-]{36}$/, attempt: 1, requestId: 'apigw-123' })
  const ended = lines.find(line => line.msg === 'job ended')
  t.equal(ended?.jobId, working?.jobId)
  t.ok(lines.some(line => line.msg === 'job attempt started' && line.jobId === working?.jobId))
})

t.test('onJobEnd hears every job\'s outcome and timing', async t => {
  const events: JobEndEvent[] = []
  const { app, clock } = await observed({ onJobEnd: event => events.push(event) })
  const before = clock.now()
  await app.inject('/work')
  const forever = app.inject('/forever')
  // Two timers on the clock: the memory store's expiry sweep, and the attempt's timeout.
  await clock.armed(2)
  await clock.advance(1000)
  await forever
  t.equal(events.length, 2)
  const [done, late] = events as [JobEndEvent, JobEndEvent]
  t.match(done, { outcome: 'completed', statusCode: 200, attempt: 1 })
  t.match(late, { outcome: 'timed-out', statusCode: 504, attempt: 1 })
  for (const event of events) {
    t.ok((event.queuedAt ?? 0) >= before && event.startedAt >= (event.queuedAt ?? 0) && event.endedAt >= event.startedAt, 'queued ≤ started ≤ ended')
  }
  t.equal(late.endedAt - late.startedAt, 1000, 'the timed-out attempt lasted its timeout')
})

t.test('an onJobEnd that throws is logged and changes nothing', async t => {
  const { app, lines } = await observed({ onJobEnd: () => { throw new Error('metrics down') } })
  const response = await app.inject('/work')
  t.equal(response.body, 'done')
  t.ok(lines.some(line => line.msg === 'onJobEnd threw'))
})

t.test('onJobEnd must be a function', async t => {
  const app = Fastify()
  await t.rejects(async () => await app.register(longRunning, { onJobEnd: 'yes' as never }), { message: 'Expected `onJobEnd` to be a function, got "yes"' })
})

t.test('a handler that throws because its job was stopped is logged at info, never as a server error', async t => {
  const { app, lines, clock, logged } = await observed()
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  // Cancelled by its client (a closed tab's client aborting, say), over real HTTP.
  const accepted = await fetch(`${url}/throws`, { headers: { prefer: 'respond-async' } })
  t.equal(accepted.status, 202)
  t.equal((await fetch(url + (accepted.headers.get('location') ?? ''), { method: 'DELETE' })).status, 204)
  const cancelled = await logged(line => line.msg === 'job run ended by its stop')
  t.match(cancelled, { level: 30, stoppedBy: 'FST_LONG_RUNNING_JOB_CANCELLED', err: { type: 'Error', message: /aborted/ } })
  t.equal(cancelled.res, undefined, 'no status: no client was sent the replay\'s 500')
  // Past its time limit.
  const late = fetch(`${url}/throws`)
  await clock.armed(2)
  await clock.advance(1000)
  t.equal((await late).status, 504)
  await logged(line => line.stoppedBy === 'FST_LONG_RUNNING_JOB_TIMEOUT')
  // The job's own lines: the 504 handed to the client is the app's error answer on the HTTP side,
  // logged there as Fastify logs every 5xx it sends.
  t.same(lines.filter(line => (line.level as number) >= 50 && line.jobId !== undefined), [], 'no error line of the job')
  t.match(lines.filter(line => (line.level as number) >= 50), [{ err: { code: 'FST_LONG_RUNNING_JOB_TIMEOUT' }, res: { statusCode: 504 } }])
  // A handler that fails of its own accord is still a server error.
  t.equal((await fetch(`${url}/fails`)).status, 500)
  t.match(await logged(line => line.level === 50 && line.jobId !== undefined), { err: { message: 'boom' }, res: { statusCode: 500 } })
})

t.test('results handed over directly and at their Location log no error line', async t => {
  const { app, lines } = await observed()
  t.equal((await app.inject('/work')).body, 'done')
  const accepted = await app.inject({ url: '/work', headers: { prefer: 'respond-async' } })
  t.equal((await app.inject({ url: accepted.headers.location as string, headers: { prefer: 'wait=5' } })).body, 'done')
  t.same(lines.filter(line => (line.level as number) >= 50), [])
})

t.test('a job run never changes the app\'s logger, which Fastify shares between requests without a logger of its own', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(longRunning, { waitSeconds: 5 })
  app.get('/work', { longRunning: true }, async () => 'done')
  const { error, info } = app.log
  for (let i = 0; i < 3; i++) t.equal((await app.inject('/work')).body, 'done')
  t.equal(app.log.error, error, 'error is the silent logger\'s own still: no run wrapped it')
  t.equal(app.log.info, info)
})
