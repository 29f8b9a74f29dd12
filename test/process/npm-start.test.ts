import t from 'tap'
import { randomBody } from '../helpers/random.js'
import { childProcesses, listeningUrl, stopChild } from '../helpers/child.js'
import { clientScenario } from '../helpers/client-scenario.js'
import { flood } from '../helpers/flood.js'

// The example as `npm start` runs it, in one child process under tsx for the whole file (each
// start costs seconds of CPU under `npm test`): followed by fetch, by the client, then flooded.
// Its coverage is left out (test/coverage-map.mjs): tsx compiles src/ differently from tap's
// loader, and merging the two would garble the report. WAIT_SECONDS 1: a 1.5 s job answers
// through a 303. JOBS_MEMORY_MIB 16: the flood's budget (the scenarios before it hold far less).
const start = childProcesses(t)
const server = start('example/server.ts', { PORT: '0', HOST: '127.0.0.1', WAIT_SECONDS: '1', JOBS_MEMORY_MIB: '16' })
const url = await listeningUrl(server)

t.test('npm start: the server on $PORT and $HOST, followed by fetch through 303s', async t => {
  const response = await fetch(`${url}/payload?delay=1.5`)
  t.equal(response.status, 200)
  t.ok(response.redirected, 'the client followed at least one 303')
  t.equal(await response.text(), '{"MESSAGE":"It took 1.5 seconds to generate this."}')
})

// `fetchLongRunning` against it (the same scenario runs in process in client.test.ts, which
// measures coverage, and against `npm run dev:aws` in dev-aws.test.ts).
t.test('the client against npm start: the embedded default', async t => {
  await clientScenario(t, url)
})

// Issue 26, point 6 (the embedded default, a 16 MiB budget): while one caller asks for 2 MiB
// results it never reads and keeps 10 uploads of 2 MiB dripping, a new client's long-running
// requests get their answers. Counts only: the time they take is measured in bench/flood.ts
// (`npm run bench`).
t.test('npm start under one caller\'s floods: a new client still gets its answers', async t => {
  const floods = flood(url, { resultBytes: 2 * 1024 * 1024, unreadConcurrency: 2, slowUploads: 10, slowAnnouncedBytes: 2 * 1024 * 1024, slowByteEveryMs: 1000 })
  // Twice what the budget holds, asked for and left unread, before the new client comes.
  await floods.unreadSent(16)
  const answers: boolean[] = []
  for (let i = 0; i < 5; i++) {
    const body = randomBody(256 * 1024)
    const response = await fetch(`${url}/echo?delay=0`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } })
    answers.push(response.status === 201 && Buffer.from(await response.arrayBuffer()).equals(body))
  }
  const counts = await floods.stop()
  t.same(answers, [true, true, true, true, true], 'the new client: five 201s with its exact bytes')
  t.ok(counts.unreadAccepted >= 16, `the flood went on: ${counts.unreadAccepted} results asked and left unread`)
  t.equal(counts.slowRefused, 0, 'slow uploads are not refused for what they announce')
  // Its 410, or that 410's 404 once it went too to make room again.
  const oldest = await fetch(url + (counts.unreadLocations[0] ?? ''))
  t.ok([410, 404].includes(oldest.status), 'the oldest unread result gave way')
  t.match(await oldest.json(), { code: /^FST_LONG_RUNNING_(RESULT_EVICTED|NOT_FOUND)$/ })
})

t.test('npm start stops cleanly on SIGTERM', async t => {
  t.equal(await stopChild(server), 0)
})
