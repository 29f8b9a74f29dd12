import { readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { childProcesses, listeningUrl, stopChild } from '../helpers/child.js'
import { curl } from '../ecosystem/serve.js'

// The Done-when of large results, as a user runs it: `npm run dev:aws` (SQS, DynamoDB and S3
// emulators, the worker Lambda export fed by the event source mapping), then
// `curl -L '…/bytes?size=52428800&delay=1' -o out.bin`: 50 MiB, byte i = i % 251, through a 303
// to the S3 emulator.
t.test('npm run dev:aws: a 50 MiB result through S3, byte for byte', async t => {
  const start = childProcesses(t)
  const server = start('example/dev-aws.ts', { PORT: '0', HOST: '127.0.0.1', WAIT_SECONDS: '1' })
  const url = await listeningUrl(server)
  const directory = mkdtempSync(join(tmpdir(), 'large-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))
  const out = join(directory, 'out.bin')
  const size = 52_428_800
  const answer = await curl(['-L', '-o', out, `${url}/bytes?size=${size}&delay=1`])
  t.equal(answer.status, 200)
  t.match(answer.headers, /content-type: application\/octet-stream/i)
  const body = readFileSync(out)
  t.equal(body.length, size)
  let wrong = -1
  for (let i = 0; i < body.length && wrong < 0; i++) if (body[i] !== i % 251) wrong = i
  t.equal(wrong, -1, 'byte i is i % 251')
  t.equal(await stopChild(server), 0)
})
