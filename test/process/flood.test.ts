import t from 'tap'
import { randomBody } from '../helpers/random.js'
import { childProcesses, listeningUrl, stopChild } from '../helpers/child.js'
import { flood } from '../helpers/flood.js'

// Issue 26, point 6, against `npm start` (the embedded default, a 16 MiB budget): while one
// caller asks for 2 MiB results it never reads and keeps 10 uploads of 2 MiB dripping, a new
// client's long-running requests get their answers. Counts only: the time they take is
// measured in bench/flood.ts (`npm run bench`).
t.test('npm start under one caller\'s floods: a new client still gets its answers', async t => {
  const start = childProcesses(t)
  const server = start('example/server.ts', { PORT: '0', HOST: '127.0.0.1', JOBS_MEMORY_MIB: '16' })
  const url = await listeningUrl(server)
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
  t.equal(await stopChild(server), 0)
})
