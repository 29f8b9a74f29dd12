import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod'
import t from 'tap'
import { z } from 'zod'
import longRunning from '../../src/index.js'
import { curl, serve } from './serve.js'

// The plugin's own schemas never break an app's compilers: zod's refuse JSON Schema outright.

t.test('fastify-type-provider-zod: the app starts, zod validates before enqueue and serializes the job\'s answer', async t => {
  const { url } = await serve(t, async (app) => {
    app.setValidatorCompiler(validatorCompiler)
    app.setSerializerCompiler(serializerCompiler)
    await app.register(longRunning, { waitSeconds: 0 })
    app.withTypeProvider<ZodTypeProvider>().post('/double', {
      longRunning: true,
      schema: { body: z.object({ n: z.number() }), response: { 201: z.object({ doubled: z.number() }) } }
    }, async (request, reply) => await reply.code(201).send({ doubled: request.body.n * 2, secret: 'dropped by the schema' } as { doubled: number }))
  })
  const ok = await fetch(`${url}/double`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":21}' })
  t.equal(ok.status, 201)
  t.ok(ok.redirected, 'through the redirect chain')
  t.same(await ok.json(), { doubled: 42 }, 'serialized by zod in the job')
  const bad = await fetch(`${url}/double`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":"x"}', redirect: 'manual' })
  t.equal(bad.status, 400, 'zod answers at once, nothing queued')
  const missing = await fetch(`${url}/async-response/00000000-0000-4000-8000-000000000000`)
  t.equal(missing.status, 404)
  t.match(await missing.json(), { code: 'FST_LONG_RUNNING_NOT_FOUND' })
  const viaCurl = await curl(['-L', '-X', 'POST', '-H', 'content-type: application/json', '-d', '{"n":2}', `${url}/double`])
  t.equal(viaCurl.status, 201, 'curl -X POST -L: the POST to /async-response answers like GET')
  t.equal(viaCurl.body, '{"doubled":4}')
})

t.test('@fastify/type-provider-typebox: TypeBox schemas on a long-running route', async t => {
  const { url } = await serve(t, async (app) => {
    await app.register(longRunning, { waitSeconds: 5 })
    app.withTypeProvider<TypeBoxTypeProvider>().get('/greet', {
      longRunning: true,
      schema: { querystring: Type.Object({ name: Type.String({ minLength: 1 }) }), response: { 200: Type.Object({ hello: Type.String() }) } }
    }, async (request) => ({ hello: request.query.name }))
  })
  const ok = await fetch(`${url}/greet?name=ann`)
  t.equal(ok.status, 200)
  t.same(await ok.json(), { hello: 'ann' })
  t.equal((await fetch(`${url}/greet?name=`)).status, 400)
  const accepted = await fetch(`${url}/greet?name=bo`, { headers: { prefer: 'respond-async' } })
  t.equal(accepted.status, 202, 'the plugin\'s interim answer still serializes')
  t.match(await accepted.json(), { status: /pending|running/ })
})
