import { randomUUID } from 'node:crypto'
import t from 'tap'
import { encodeMessage } from '../../src/job/message.js'
import { buildTestApp, closeTestApp } from '../helpers/app.js'
import { int, pick, random } from '../helpers/random.js'
import { delivery, RecordingQueue } from '../helpers/recording-queue.js'

// Generated hostile input, from a fixed seed (the same run every time): never a 5xx from
// input, never a crash, never a message retried forever.
const next = random(20261127)
const CHARS = 'abcdef0123456789-ABCDEFxyz%/._~!$&\'()*+,;=:@ \t\u00e9\u2603\ud83d\ude00'

function garbage (length: number): string {
  return Array.from({ length }, () => pick(next, [...CHARS])).join('')
}

function nearId (): string {
  const id = randomUUID()
  switch (int(next, 6)) {
    case 0: return id.toUpperCase()
    case 1: return id.slice(0, int(next, 36))
    case 2: return id + garbage(1 + int(next, 3))
    case 3: return id.replace(/[0-9a-f]/, pick(next, ['g', 'G', '%', ' ']))
    case 4: return garbage(int(next, 200))
    default: return id // well-formed but unknown
  }
}

t.test('thousands of generated ids, hop values and Prefer headers: only 400 or 404', async t => {
  const test = await buildTestApp({ waitSeconds: 0 })
  t.teardown(() => closeTestApp(test))
  const statuses = new Map<number, number>()
  for (let i = 0; i < 3000; i++) {
    const id = encodeURIComponent(nearId()).replace(/%2F/g, pick(next, ['/', '%2F']))
    const hop = pick(next, ['', `?hop=${int(next, 20000)}`, `?hop=${garbage(int(next, 6))}`, '?hop=1&hop=2', '?x=1'])
    const prefer = pick(next, ['respond-async', `wait=${garbage(3)}`, 'wait=1, respond-async;x=y', garbage(int(next, 40)), ''])
    const response = await test.app.inject({ url: `/async-response/${id}${hop}`, headers: { prefer } })
    statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1)
    if (response.statusCode >= 500) t.fail(`${response.statusCode} for ${id}${hop} (${prefer}): ${response.body}`)
  }
  t.ok([...statuses.keys()].every(status => status === 400 || status === 404), JSON.stringify(Object.fromEntries(statuses)))
})

t.test('malformed queue messages are dropped on first sight', async t => {
  const queue = new RecordingQueue()
  const test = await buildTestApp({ queue })
  t.teardown(() => closeTestApp(test))
  const valid = encodeMessage({
    id: randomUUID(),
    timeoutSeconds: 5,
    maxAttempts: 1,
    resultTtlSeconds: 60,
    request: { method: 'GET', url: '/plain', headers: {}, body: Buffer.from('x') }
  })
  const bodies: string[] = []
  for (let i = 0; i < 1000; i++) {
    switch (int(next, 5)) {
      case 0: bodies.push(Buffer.from(Array.from({ length: int(next, 300) }, () => int(next, 256))).toString('latin1')); break
      case 1: bodies.push(valid.slice(0, int(next, valid.length))); break
      case 2: bodies.push(valid.replace('"v":1', `"v":${pick(next, ['0', '2', '"1"', 'null', '1.5'])}`)); break
      case 3: bodies.push(valid.replace(/"(method|url|id|timeoutSeconds|headers)":/, `"${garbage(3)}":`)); break
      default: bodies.push(`{"v":1,"id":"${randomUUID()}","pad":"${'x'.repeat(int(next, 300_000))}"}`)
    }
  }
  const retried: string[] = []
  for (const body of bodies) {
    const disposition = await test.app.longRunning.handle(delivery(body))
    if (!disposition.ack) retried.push(body.slice(0, 80))
  }
  t.equal(bodies.length, 1000)
  t.same(retried, [], 'every malformed message dropped, none retried')
  t.equal(test.runs.size, 0, 'nothing ran')
})
