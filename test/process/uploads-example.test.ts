import { createHash, randomBytes } from 'node:crypto'
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { curl } from '../ecosystem/serve.js'
import { childProcesses, listeningUrl, stopChild } from '../helpers/child.js'

// The Done-when of issue 29, as a user runs it: `npm run dev:aws`, then `curl -L -F file=@…` to
// the example's POST /upload, and `curl -L --data-binary @…` to POST /echo: the upload streams
// to the S3 emulator as it arrives, back to the job's replay, and (echo) out through the S3
// result path. Correctness only: the memory it costs is bench/upload.ts's (200 MiB there).
const MiB = 1024 * 1024
const SIZE = 48 * MiB + 12_345

t.test('npm run dev:aws: a multipart upload reaches POST /upload intact, and POST /echo hands a large body back byte for byte', async t => {
  const directory = mkdtempSync(join(tmpdir(), 'uploads-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))
  const file = join(directory, 'in.bin')
  const hash = createHash('sha256')
  const out = createWriteStream(file)
  for (let left = SIZE; left > 0; left -= MiB) {
    const chunk = randomBytes(Math.min(MiB, left))
    hash.update(chunk)
    out.write(chunk)
  }
  await new Promise<void>(resolve => out.end(() => resolve()))
  const sha256 = hash.digest('hex')

  const start = childProcesses(t)
  const server = start('example/dev-aws.ts', { PORT: '0', HOST: '127.0.0.1', WAIT_SECONDS: '2' })
  const url = await listeningUrl(server)

  const uploaded = await curl(['-L', '-F', 'note=hello', '-F', `file=@${file}`, `${url}/upload?delay=1`])
  t.equal(uploaded.status, 200)
  t.same(JSON.parse(uploaded.body), { files: [{ field: 'file', filename: 'in.bin', bytes: SIZE, sha256 }], fields: { note: 'hello' } })

  const back = join(directory, 'back.bin')
  const echoed = await curl(['-L', '--data-binary', `@${file}`, '-H', 'content-type: application/octet-stream', '-o', back, `${url}/echo?delay=1`])
  t.equal(echoed.status, 200, 'S3\'s own 200 at the end of the 303s')
  t.equal(createHash('sha256').update(readFileSync(back)).digest('hex'), sha256, 'byte for byte')
  t.equal(await stopChild(server), 0)
})
