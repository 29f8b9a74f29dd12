import t from 'tap'
import { buildApp } from '../../example/app.js'
import { memoryStore } from '../../src/index.js'
import { idempotencyScenario } from '../helpers/idempotency-scenario.js'
import { pattern } from '../helpers/pattern.js'

t.test('the example routes, embedded default', async t => {
  const app = await buildApp({ waitSeconds: 5 })
  t.teardown(() => app.close())

  const payload = await app.inject('/payload?delay=0.01')
  t.equal(payload.statusCode, 200)
  t.equal(payload.body, '{"MESSAGE":"It took 0.01 seconds to generate this."}')

  for (const bad of ['x', '-1', '900.5', '1000', '1e2', '']) {
    const response = await app.inject(`/payload?delay=${bad}`)
    t.equal(response.statusCode, 400, `delay=${bad}`)
  }
  t.same((await app.inject('/stats')).json(), { executions: 1, running: 0 }, 'rejected requests never ran')

  const bytes = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 256))
  const echo = await app.inject({ method: 'POST', url: '/echo?delay=0', payload: bytes, headers: { 'content-type': 'image/x-test' } })
  t.equal(echo.statusCode, 201)
  t.equal(echo.headers['x-echo'], '1')
  t.equal(echo.headers['content-type'], 'image/x-test')
  t.ok(echo.rawPayload.equals(bytes))

  const bytes251 = await app.inject('/bytes?size=100000')
  t.equal(bytes251.statusCode, 200)
  t.equal(bytes251.headers['content-type'], 'application/octet-stream')
  t.ok(bytes251.rawPayload.equals(pattern(100000)), 'byte i is i % 251')
  for (const bad of ['', '-1', '67108865', '1.5', 'x']) t.equal((await app.inject(`/bytes?size=${bad}`)).statusCode, 400, `size=${bad}`)

  const fail = await app.inject('/fail?delay=0')
  t.equal(fail.statusCode, 500)
  t.same(fail.json(), { statusCode: 500, error: 'Internal Server Error', message: 'boom' })
  t.same((await app.inject('/health')).json(), { ok: true })
  t.same((await app.inject('/stats')).json(), { executions: 4, running: 0 })
})

t.test('the example reports progress on /payload, rising, at least once a second', async t => {
  const store = memoryStore()
  const app = await buildApp({ waitSeconds: 5, store })
  t.teardown(() => app.close())
  const accepted = await app.inject({ url: '/payload?delay=2.2', headers: { prefer: 'respond-async' } })
  const id = (accepted.json() as { id: string }).id
  const reports: number[] = []
  const stop = store.watch?.(id, record => {
    const fraction = record?.progress?.fraction
    if (fraction !== undefined && fraction !== reports.at(-1)) reports.push(fraction)
  })
  t.teardown(() => stop?.())
  const done = await app.inject({ url: accepted.headers.location as string, headers: { prefer: 'wait=5' } })
  t.equal(done.statusCode, 200)
  // The route reports every 0.5 s of a 2.2 s job; the plugin stores the first at once, then
  // one a second, and the last before the result: three (counted, not timed).
  t.ok(reports.length >= 3, `${reports.length} reports stored`)
  t.ok(reports.every((fraction, i) => i === 0 || fraction > (reports[i - 1] as number)), 'rising')
  t.ok(reports.every(fraction => fraction > 0 && fraction <= 1))
})

// Over real HTTP, waiting 1 s (dev-aws.test.ts runs the same against `npm run dev:aws`).
t.test('the example\'s POST /echo with Idempotency-Key, embedded default: one run per key, the same bytes for every request', async t => {
  const app = await buildApp({ waitSeconds: 1 })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  await idempotencyScenario(t, `http://127.0.0.1:${(app.server.address() as { port: number }).port}`)
})
