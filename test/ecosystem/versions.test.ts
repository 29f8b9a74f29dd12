import t from 'tap'
import longRunning from '../../src/index.js'
import { curl, serve } from './serve.js'

// Versioned routes (find-my-way's `version` constraint): the client sends Accept-Version, and
// curl and fetch send it again on every hop of the redirect chain; the router lets no
// unversioned route answer such a request (issue 25, point 4).
t.test('a versioned long-running route: its 303 chain and its status requests answer under Accept-Version', async t => {
  const { url } = await serve(t, async app => {
    await app.register(longRunning, { waitSeconds: 0 })
    app.get('/report', { longRunning: true, constraints: { version: '1.2.0' } }, async () => ({ v: 1 }))
    app.get('/report', { longRunning: true, constraints: { version: '2.0.0' } }, async () => ({ v: 2 }))
    app.get('/plain', { longRunning: true }, async () => ({ v: 0 }))
  })
  for (const [version, v] of [['1.x', 1], ['2.0.0', 2]] as const) {
    const response = await fetch(`${url}/report`, { headers: { 'accept-version': version } })
    t.equal(response.status, 200, `fetch, Accept-Version ${version}`)
    t.same(await response.json(), { v })
    t.ok(response.redirected, 'through the 303 chain')
    const viaCurl = await curl(['-L', '-H', `Accept-Version: ${version}`, `${url}/report`])
    t.equal(viaCurl.status, 200, `curl -L, Accept-Version ${version}`)
    t.same(JSON.parse(viaCurl.body), { v })
  }
  const accepted = await fetch(`${url}/report`, { headers: { 'accept-version': '1.x', prefer: 'respond-async' } })
  t.equal(accepted.status, 202)
  const location = url + (accepted.headers.get('location') ?? '')
  t.equal((await fetch(location, { headers: { 'accept-version': '1.x', prefer: 'wait=5' } })).status, 200, 'a status request too')
  t.equal((await fetch(`${url}/plain`)).status, 200, 'unversioned routes as before')
  t.equal((await fetch(`${url}/async-response/not-a-job`, { headers: { 'accept-version': '1.x' } })).status, 404, 'a bad id: the plugin\'s 404')
})
