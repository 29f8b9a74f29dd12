import t from 'tap'
import { buildApp } from '../example/app.js'

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
  t.same((await app.inject('/stats')).json(), { executions: 1 }, 'rejected requests never ran')

  const bytes = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 256))
  const echo = await app.inject({ method: 'POST', url: '/echo?delay=0', payload: bytes, headers: { 'content-type': 'image/x-test' } })
  t.equal(echo.statusCode, 201)
  t.equal(echo.headers['x-echo'], '1')
  t.equal(echo.headers['content-type'], 'image/x-test')
  t.ok(echo.rawPayload.equals(bytes))

  const fail = await app.inject('/fail?delay=0')
  t.equal(fail.statusCode, 500)
  t.same(fail.json(), { statusCode: 500, error: 'Internal Server Error', message: 'boom' })
  t.same((await app.inject('/health')).json(), { ok: true })
  t.same((await app.inject('/stats')).json(), { executions: 3 })
})
