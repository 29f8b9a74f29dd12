import Fastify from 'fastify'
import t from 'tap'
import { fetchLongRunning } from '../../src/client/index.js'

// The client's side of a result kept in S3 (issue 24, point 2), against a server that answers
// as the plugin describes such a result and serves the body itself, so that each case can be
// built: a null-body status, a URL that is not http(s), a description that is not one, S3 asked
// again after its 503. The plugin's own descriptions, on the emulators: test/process/large-results-client.test.ts.

const app = Fastify()
let downloads = 0
let unavailable = 0
const describe = (statusCode: number, location: string, headers: unknown = { 'x-route': '1' }): object => ({ id: 'j', status: 'done', statusCode, headers, location })
const described = (body: object) => async (_request: unknown, reply: import('fastify').FastifyReply) =>
  await reply.code(202).header('preference-applied', 'respond-async, wait=2').send(body)
app.get('/body', async (request, reply) => {
  downloads++
  t.equal(request.headers.prefer, undefined, 'the download carries no Prefer')
  t.equal(request.headers.authorization, undefined, 'nor any header of the caller\'s')
  if (unavailable-- > 0) return await reply.code(503).header('retry-after', '0').send('SlowDown')
  return 'the body'
})
app.get('/created', described(describe(201, '/body')))
app.get('/empty', described(describe(204, '/body')))
app.get('/script', described(describe(200, 'javascript:alert(1)')))
app.get('/not-one', described(describe(200, '/body', ['x'])))
await app.listen({ port: 0, host: '127.0.0.1' })
t.teardown(() => app.close())
const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`

t.test('the route\'s status and headers with the downloaded body; S3\'s 503 asked again', async t => {
  unavailable = 1
  downloads = 0
  const response = await fetchLongRunning(`${url}/created`, { headers: { authorization: 'Bearer secret' } })
  t.equal(response.status, 201)
  t.equal(response.headers.get('x-route'), '1')
  t.equal(await response.text(), 'the body')
  t.equal(downloads, 2)
})

t.test('a 204 downloads nothing and has no body', async t => {
  downloads = 0
  const response = await fetchLongRunning(`${url}/empty`)
  t.equal(response.status, 204)
  t.equal(response.body, null)
  t.equal(downloads, 0)
})

t.test('a result URL that is not http(s) rejects; a malformed description is the route\'s 202', async t => {
  await t.rejects(fetchLongRunning(`${url}/script`), { name: 'TypeError', message: /not http/ })
  const response = await fetchLongRunning(`${url}/not-one`)
  t.equal(response.status, 202)
  t.match(await response.json(), { status: 'done' })
})
