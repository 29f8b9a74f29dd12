import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import t from 'tap'

// The example as `npm start` runs it, in a child process under tsx. Its coverage is left out
// (test/coverage-map.mjs): tsx compiles src/ differently from tap's loader, and merging the
// two would garble the report.
t.test('npm start: the server on $PORT and $HOST, followed by fetch through 303s', async t => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'example/server.ts'], {
    env: { PATH: process.env.PATH, PORT: '0', HOST: '127.0.0.1', WAIT_SECONDS: '0.05', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { child.kill() })
  let url: string | undefined
  for await (const line of createInterface({ input: child.stdout })) {
    url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line)?.[1]
    if (url !== undefined) break
  }
  t.ok(url)
  const response = await fetch(`${url}/payload?delay=0.3`)
  t.equal(response.status, 200)
  t.ok(response.redirected, 'the client followed at least one 303')
  t.equal(await response.text(), '{"MESSAGE":"It took 0.3 seconds to generate this."}')
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0, 'stops cleanly on SIGTERM')
})
