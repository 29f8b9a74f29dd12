import t from 'tap'
import { buildTestApp, closeTestApp } from '../helpers/app.js'

// Issue 24, point 3: every answer the plugin gives to `Prefer: wait=N` names it in
// `Preference-Applied` (its 202s `respond-async` too), results and its own errors alike, so
// that the client tells them from a front end's own errors (API Gateway, ALB), which name none.
// A job run's stored response stays the route's own; ordinary routes are left alone.

t.test('every plugin answer to Prefer: respond-async, wait=N names the preferences it applied', async t => {
  const test = await buildTestApp({ waitSeconds: 25 }, (app, gates) => {
    app.register(async (auth) => {
      auth.addHook('onRequest', async (request, reply) => {
        if (request.headers.authorization === undefined) await reply.code(401).send({ message: 'who?' })
      })
      auth.get('/private', { longRunning: true }, async () => 'secret')
    })
    app.get('/own', { longRunning: true }, async (_request, reply) => {
      await gates.get('own').opened
      return await reply.code(202).header('preference-applied', 'return=minimal').send({ id: 'x', status: 'pending', location: '/x' })
    })
  })
  t.teardown(() => closeTestApp(test))
  const url = await test.listen()
  const prefer = { prefer: 'respond-async, wait=0' }
  const applied = async (path: string, init: RequestInit = {}): Promise<[number, string | null]> => {
    const response = await fetch(`${url}${path}`, { ...init, headers: { ...prefer, ...init.headers as object }, redirect: 'manual' })
    await response.arrayBuffer()
    return [response.status, response.headers.get('preference-applied')]
  }

  const accepted = await fetch(`${url}/job/marked`, { headers: prefer })
  const location = accepted.headers.get('location') ?? ''
  t.same([accepted.status, accepted.headers.get('preference-applied')], [202, 'respond-async, wait=0'], 'the 202')
  await accepted.arrayBuffer()
  t.same(await applied(location), [202, 'respond-async, wait=0'], 'a status request\'s 202')
  test.gates.open('marked')
  t.same(await applied(`${location.replace(/\?.*/, '')}?hop=1`, { headers: { prefer: 'respond-async, wait=25' } }), [201, 'wait=25'], 'the final result')
  t.same(await applied('/async-response/not-a-job'), [404, 'wait=0'], 'its own 404')
  t.same(await applied('/async-response/x?hop=-1'), [400, 'wait=0'], 'its own 400')
  t.same(await applied(location, { method: 'DELETE' }), [409, 'wait=0'], 'its 409 to a DELETE of a finished job')
  t.same(await applied('/private'), [401, 'wait=0'], 'a long-running route\'s hook answering: the app\'s answer too')
  t.same(await applied('/plain'), [200, null], 'an ordinary route is not the plugin\'s')

  // A route's own 202 names `wait` only (its own preference kept): the client takes it as the answer.
  const own = await fetch(`${url}/own`, { headers: prefer })
  await own.arrayBuffer()
  test.gates.open('own')
  t.same(await applied(own.headers.get('location') ?? '', { headers: { prefer: 'wait=25' } }), [202, 'return=minimal, wait=25'])

  // No Prefer, no Preference-Applied; and the stored response holds none (it is the route's own).
  const plain = await fetch(`${url}${location}`)
  t.equal(plain.status, 201)
  t.equal(plain.headers.get('preference-applied'), null)
  const job = await fetch(`${url}/job/quick?open=1`, { headers: { prefer: 'wait=25' } })
  t.equal(job.headers.get('preference-applied'), 'wait=25')
  t.equal(job.headers.get('x-job-name'), 'quick')
})
