import t from 'tap'
import { childProcesses, listeningUrl, stopChild } from '../helpers/child.js'

// The example as `npm start` runs it, in a child process under tsx. Its coverage is left out
// (test/coverage-map.mjs): tsx compiles src/ differently from tap's loader, and merging the
// two would garble the report.
t.test('npm start: the server on $PORT and $HOST, followed by fetch through 303s', async t => {
  const start = childProcesses(t)
  const server = start('example/server.ts', { PORT: '0', HOST: '127.0.0.1', WAIT_SECONDS: '0.05' })
  const url = await listeningUrl(server)
  const response = await fetch(`${url}/payload?delay=0.3`)
  t.equal(response.status, 200)
  t.ok(response.redirected, 'the client followed at least one 303')
  t.equal(await response.text(), '{"MESSAGE":"It took 0.3 seconds to generate this."}')
  t.equal(await stopChild(server), 0, 'stops cleanly on SIGTERM')
})
