import http2 from 'node:http2'
import Fastify from 'fastify'
import t from 'tap'
import longRunning from '../../src/index.js'
import { FakeClock } from '../../src/testing/fake-clock.js'

// HTTP/2 without TLS (h2c), as behind a proxy that speaks it to the app: a request body framed by
// END_STREAM has no content-length (RFC 9113 §8.1), and the long-running route must still see it
// as its synchronous twin does (issue 25, point 5).
t.test('h2c: a body without content-length reaches the job; a request without a body has none', async t => {
  const app = Fastify({ http2: true })
  t.teardown(async () => await app.close())
  await app.register(longRunning, { waitSeconds: 5 })
  const handler = async (request: { body: unknown }): Promise<unknown> => ({ got: request.body ?? null })
  app.post('/job', { longRunning: true }, handler)
  app.post('/sync', handler)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const client = http2.connect(`http://127.0.0.1:${(app.server.address() as { port: number }).port}`)
  t.teardown(() => client.close())

  const send = async (path: string, headers: http2.OutgoingHttpHeaders, body?: string): Promise<{ status: number, text: string }> => {
    const stream = client.request({ ':method': 'POST', ':path': path, ...headers }, { endStream: body === undefined })
    if (body !== undefined) stream.end(body)
    const status = await new Promise<number>(resolve => stream.once('response', response => resolve(response[':status'] as number)))
    let text = ''
    stream.setEncoding('utf8')
    for await (const chunk of stream) text += chunk as string
    return { status, text }
  }
  for (const [name, headers, body] of [
    ['JSON in DATA frames', { 'content-type': 'application/json' }, '{"a":1}'],
    ['text in DATA frames', { 'content-type': 'text/plain' }, 'plain words'],
    ['no body at all', {}, undefined]
  ] as const) {
    const sync = await send('/sync', headers, body)
    const job = await send('/job', headers, body)
    t.same(job, sync, `${name}: ${sync.status} ${sync.text}`)
  }
})

t.test('h2c: a stream whose body is late gets its 408 (no connection header: HTTP/2 has none)', async t => {
  const clock = new FakeClock()
  const app = Fastify({ http2: true })
  t.teardown(async () => await app.close())
  await app.register(longRunning, { clock, bodyTimeoutSeconds: 5 })
  app.post('/job', { longRunning: true }, async () => 'ran')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const client = http2.connect(`http://127.0.0.1:${(app.server.address() as { port: number }).port}`)
  t.teardown(() => client.close())
  const before = clock.pending
  const stream = client.request({ ':method': 'POST', ':path': '/job', 'content-type': 'text/plain' })
  stream.write('the first bytes of many')
  await clock.armed(before + 1)
  const response = new Promise<number>(resolve => stream.once('response', headers => resolve(headers[':status'] as number)))
  await clock.advance(5000)
  t.equal(await response, 408)
  // The answer out, the server resets the stream (NO_ERROR), as after any answer before a whole
  // body (body-budget.ts). The session first: Fastify's close waits for open HTTP/2 sessions.
  client.destroy()
})
