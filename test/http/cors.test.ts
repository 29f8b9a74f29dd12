import cors from '@fastify/cors'
import Fastify from 'fastify'
import t from 'tap'
import longRunning from '../../src/index.js'

// With @fastify/cors registered first, every answer of the plugin (303, 202, 404, the final
// response) carries the CORS headers, so a page on another origin can follow the redirects.
t.test('303, 202, 404 and the final response carry CORS headers', async t => {
  const app = Fastify()
  await app.register(cors, { origin: 'https://page.example', exposedHeaders: ['location', 'retry-after'] })
  await app.register(longRunning, { waitSeconds: 10 })
  let release: () => void = () => {}
  const released = new Promise<void>(resolve => { release = resolve })
  app.post('/echo', { longRunning: true }, async (request) => {
    await released
    return { echoed: request.body }
  })
  t.teardown(() => app.close())
  const origin = { origin: 'https://page.example' }

  const accepted = await app.inject({ method: 'POST', url: '/echo', payload: { a: 1 }, headers: { ...origin, prefer: 'wait=0' } })
  t.equal(accepted.statusCode, 303)
  t.equal(accepted.headers['access-control-allow-origin'], 'https://page.example')
  t.match(accepted.headers['access-control-expose-headers'], /location/)
  const location = accepted.headers.location as string

  const pending = await app.inject({ url: location, headers: { ...origin, prefer: 'respond-async' } })
  t.equal(pending.statusCode, 202)
  t.equal(pending.headers['access-control-allow-origin'], 'https://page.example')

  const missing = await app.inject({ url: '/async-response/00000000-0000-4000-8000-000000000000', headers: origin })
  t.equal(missing.statusCode, 404)
  t.equal(missing.headers['access-control-allow-origin'], 'https://page.example')

  release()
  const final = await app.inject({ url: location, headers: origin })
  t.equal(final.statusCode, 200)
  t.same(final.json(), { echoed: { a: 1 } })
  t.equal(final.headers['access-control-allow-origin'], 'https://page.example')
})
