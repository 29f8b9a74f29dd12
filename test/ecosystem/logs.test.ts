import { Writable } from 'node:stream'
import t from 'tap'
import longRunning from '../../src/index.js'
import { serve } from './serve.js'

// `logger: true` and no x-request-id anywhere: the request that queued a job says so at info,
// naming the job, and the job's lines name that request (issue 25, point 7). An operator gets
// from a client's failed request (its reqId) to the job's lines, and back.
t.test('one info line joins a request to its job; the job\'s lines carry the request\'s id', async t => {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done() } })
  const { url } = await serve(t, async app => {
    await app.register(longRunning, { waitSeconds: 5 })
    app.post('/report', { longRunning: true }, async request => {
      request.log.info('building the report')
      throw new Error('the report failed')
    })
  }, { logger: { level: 'info', stream } })
  const response = await fetch(`${url}/report`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
  t.equal(response.status, 500)
  const accepted = lines.find(line => line.msg === 'job accepted')
  t.match(accepted, { level: 30, reqId: /^req-/, jobId: /^[0-9a-f-]{36}$/ }, 'the request names its job')
  const jobLines = lines.filter(line => line.jobId === accepted?.jobId && line !== accepted)
  for (const msg of ['job attempt started', 'building the report', 'the report failed', 'job ended']) {
    t.match(jobLines.find(line => line.msg === msg), { queuedBy: accepted?.reqId }, `"${msg}" names the request that queued the job`)
  }
})
