import swagger from '@fastify/swagger'
import { Validator } from '@seriousme/openapi-schema-validator'
import Fastify from 'fastify'
import t from 'tap'
import longRunning from '../../src/index.js'

// With @fastify/swagger registered, the generated OpenAPI document shows the async endpoints
// and every long-running route's 202 and 303 and Prefer header, with no user code, and validates.
t.test('the OpenAPI document lists the async endpoints and the interim answers, and validates', async t => {
  const app = Fastify()
  await app.register(swagger, { openapi: { info: { title: 'jobs', version: '1.0.0' } } })
  await app.register(longRunning)
  app.post('/report', {
    longRunning: true,
    schema: {
      body: { type: 'object', properties: { n: { type: 'integer' } } },
      headers: { type: 'object', properties: { 'x-tenant': { type: 'string' } } },
      response: { 201: { type: 'object', properties: { total: { type: 'integer' } } } }
    }
  }, async () => ({ total: 1 }))
  app.get('/export', { longRunning: true }, async () => 'csv')
  app.post('/unkeyed', { longRunning: { idempotency: false } }, async () => 'done')
  t.teardown(() => app.close())
  await app.ready()
  const document = app.swagger() as unknown as { paths: Record<string, Record<string, { responses: Record<string, unknown>, parameters?: Array<{ name: string, in: string }> }>> }

  const result = document.paths['/async-response/{id}']
  t.ok(result?.get && result.delete, 'GET and DELETE /async-response/{id}')
  t.same(Object.keys(result?.get?.responses ?? {}).sort(), ['200', '202', '303', '404'])
  t.same(Object.keys(result?.delete?.responses ?? {}).sort(), ['204', '404', '409'])
  t.notOk(Object.keys(document.paths).some(path => path.includes('*')), 'the wildcard twin stays hidden')

  for (const [path, method, own] of [['/report', 'post', ['201', '409', '422']], ['/export', 'get', []]] as const) {
    const operation = document.paths[path]?.[method]
    t.same(Object.keys(operation?.responses ?? {}).sort(), [...own, '202', '303'].sort(), `${path}: gains 202 and 303 (and 409 and 422 with keys)`)
    t.ok(operation?.parameters?.some(parameter => parameter.in === 'header' && parameter.name === 'prefer'), `${path}: documents Prefer`)
    const keyed = operation?.parameters?.some(parameter => parameter.in === 'header' && parameter.name === 'idempotency-key')
    t.equal(keyed, method === 'post', `${path}: documents Idempotency-Key where it applies`)
  }
  t.ok(document.paths['/report']?.post?.parameters?.some(parameter => parameter.name === 'x-tenant'), 'the route\'s own headers are kept')
  t.same(Object.keys(document.paths['/unkeyed']?.post?.responses ?? {}).sort(), ['202', '303'], 'no key answers where keys are off')

  const validation = await new Validator().validate(document as unknown as Parameters<Validator['validate']>[0])
  t.ok(validation.valid, JSON.stringify(validation.errors))

  // The schemas change nothing on the wire: a bad id still gets the plugin's 404, not a 400.
  t.equal((await app.inject('/async-response/not-a-uuid')).statusCode, 404)
  const accepted = await app.inject({ method: 'POST', url: '/report', payload: { n: 1 }, headers: { prefer: 'respond-async' } })
  t.equal(accepted.statusCode, 202)
  t.match(accepted.json(), { status: /pending|running/ })
})
