import Fastify from 'fastify'
import t from 'tap'
import longRunning from '../../src/index.js'

// How a stored result's cookies meet those of the request that fetches it (src/http/cookies.ts),
// beyond the session plugins of test/ecosystem/sessions.test.ts: the same line twice, cookies
// told apart by Domain and Path, and a session that cannot be read again.

t.test('one Set-Cookie per cookie: the route\'s wins, the same line is sent once, other paths and domains are other cookies', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  let reloads = 0
  app.decorateRequest('session', null as never)
  app.addHook('onRequest', async request => {
    // A session whose store is down: reading it again fails, and the result still goes out.
    (request as unknown as { session: object }).session = { reload: async () => { reloads++; throw new Error('store down') } }
  })
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.longRunning !== null) return payload
    reply.header('set-cookie', ['same=1; Path=/', 'a=live; Path=/', 'a=other-path; Path=/x', 'a=other-domain; Domain=b.example; Path=/', 'theirs=1'])
    return payload
  })
  await app.register(longRunning, { waitSeconds: 5 })
  app.get('/cookies', { longRunning: true }, async (_request, reply) => await reply.header('set-cookie', ['same=1; Path=/', 'a=route; Path=/']).send('ok'))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const response = await fetch(`http://127.0.0.1:${(app.server.address() as { port: number }).port}/cookies`)
  t.equal(await response.text(), 'ok')
  t.same(response.headers.getSetCookie().sort(), ['a=other-domain; Domain=b.example; Path=/', 'a=other-path; Path=/x', 'a=route; Path=/', 'same=1; Path=/', 'theirs=1'])
  t.equal(reloads, 1)
})
