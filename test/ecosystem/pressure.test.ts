import underPressure from '@fastify/under-pressure'
import type { FastifyReply, FastifyRequest } from 'fastify'
import t, { type Test } from 'tap'
import longRunning from '../../src/index.js'
import { Gate } from '../helpers/gate.js'
import { serve } from './serve.js'

// @fastify/under-pressure sheds load from its onRequest hook. A job accepted while the app was
// healthy is replayed later, perhaps once the app sheds load: unless the pressure handler lets
// job runs through, the job ends as a stored 503 (issue 25, point 9; the pattern is in the README).

/** The README's pattern: a job run was accepted before the pressure; it runs. */
function skipJobRuns (request: FastifyRequest, reply: FastifyReply, type: string): void {
  if (request.longRunning !== null) return
  void reply.code(503).header('retry-after', '10').send({ statusCode: 503, error: 'Service Unavailable', message: `Under pressure: ${type}` })
}

/** An app with one job slot: `/block` holds it until `blocker` opens, so `/report` runs later. */
async function pressured (t: Test, pressureHandler?: typeof skipJobRuns) {
  let healthy = true
  const blocker = new Gate()
  let reportEnded = (): void => {}
  const ended = new Promise<void>(resolve => { reportEnded = resolve })
  const { url } = await serve(t, async app => {
    await app.register(underPressure, {
      healthCheck: async () => healthy,
      healthCheckInterval: 5,
      ...(pressureHandler === undefined ? {} : { pressureHandler })
    })
    await app.register(longRunning, { waitSeconds: 0, concurrency: 1, onJobEnd: event => { if (event.id === reportId) reportEnded() } })
    app.get('/block', { longRunning: true }, async () => { await blocker.opened; return 'unblocked' })
    app.get('/report', { longRunning: true }, async () => ({ report: 'ready' }))
    app.get('/ping', async () => 'pong')
  })
  const accept = async (path: string): Promise<string> => {
    const response = await fetch(url + path, { headers: { prefer: 'respond-async' } })
    t.equal(response.status, 202, `${path} accepted while healthy`)
    return url + (response.headers.get('location') ?? '')
  }
  let reportId = ''
  await accept('/block')
  const report = await accept('/report')
  reportId = /async-response\/([^?]+)/.exec(report)?.[1] ?? ''
  healthy = false
  // Until under-pressure's own check has seen it: an ordinary request is shed.
  while ((await fetch(`${url}/ping`)).status !== 503) await new Promise(resolve => setImmediate(resolve))
  // The report job runs now, under pressure; clients are shed until the app is healthy again.
  blocker.open()
  await ended
  t.equal((await fetch(report)).status, 503, 'a client reading it under pressure is shed, with the app\'s answer')
  healthy = true
  while ((await fetch(`${url}/ping`)).status !== 200) await new Promise(resolve => setImmediate(resolve))
  return { report }
}

t.test('a pressureHandler that lets job runs through: a job accepted before the pressure runs', async t => {
  const { report } = await pressured(t, skipJobRuns)
  const result = await fetch(report, { headers: { prefer: 'wait=10' } })
  t.equal(result.status, 200)
  t.same(await result.json(), { report: 'ready' })
})

t.test('without it, the accepted job is shed when it runs: its stored answer is the 503', async t => {
  const { report } = await pressured(t)
  const result = await fetch(report, { headers: { prefer: 'wait=10' } })
  t.equal(result.status, 503)
  t.match(await result.json(), { code: 'FST_UNDER_PRESSURE' })
})
