import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { exportLines } from '../../example/shell.js'
import { fetchLongRunning } from '../../src/client/index.js'
import { curl } from '../ecosystem/serve.js'
import { childProcesses, follow, listeningUrl, startCommand, stopChild, type Child } from '../helpers/child.js'
import { clientScenario } from '../helpers/client-scenario.js'
import { idempotencyScenario } from '../helpers/idempotency-scenario.js'
import { pattern } from '../helpers/pattern.js'

// `npm run dev:aws` (SQS, DynamoDB and S3 emulators, the worker Lambda export fed by the event
// source mapping) in one child process for the whole file, each start costing seconds of CPU
// under `npm test`; its subtests take turns, each counting its own jobs. WAIT_SECONDS 1: every
// scenario goes through 303s. Its coverage is left out (test/coverage-map.mjs).
const run = promisify(execFile)

const devAws = childProcesses(t)('example/dev-aws.ts', { PORT: '0', HOST: '127.0.0.1', WAIT_SECONDS: '1' })
const url = await listeningUrl(devAws)

t.test('export lines survive any value through a POSIX shell', async t => {
  const env = { PLAIN: 'http://127.0.0.1:4566/000000000000/jobs', QUOTES: 'it\'s "quoted"', SHELLISH: '$HOME `id` $(id) \\ ; & | * ~ !', LINES: 'one\ntwo\n', EMPTY: '' }
  const script = `${exportLines(env)}exec "${process.execPath}" -e 'process.stdout.write(JSON.stringify(process.env))'`
  const { stdout } = await run('sh', ['-c', script], { env: { PATH: process.env.PATH ?? '' } })
  t.match(JSON.parse(stdout), env)
  t.throws(() => exportLines({ 'NOT A NAME': 'x' }), { message: 'Expected an environment variable name, got "NOT A NAME"' })
})

// `fetchLongRunning` against it (the same scenario runs in process in client.test.ts, which
// measures coverage, and against `npm start` in npm-start.test.ts).
t.test('the client against npm run dev:aws: SQS, DynamoDB, S3 and the worker Lambda on the emulators', async t => {
  await clientScenario(t, url, { handlerStops: false })
  await t.test('a result kept in S3 (5 MiB): described by the plugin, downloaded from its presigned URL', async t => {
    const downloads: string[] = []
    const recording = async (request: Request): Promise<Response> => {
      if (!request.url.startsWith(url)) downloads.push(request.url)
      return await fetch(request)
    }
    const response = await fetchLongRunning(`${url}/bytes?size=5242880&delay=1`, {}, { fetch: recording })
    t.equal(response.status, 200)
    t.equal(response.headers.get('content-type'), 'application/octet-stream')
    t.equal(downloads.length, 1, 'downloaded from the S3 emulator')
    const bytes = new Uint8Array(await response.arrayBuffer())
    t.equal(bytes.length, 5242880)
    t.ok(pattern(5242880).equals(bytes), 'byte i = i % 251')
  })
})

// The same as example.test.ts runs embedded.
t.test('the example\'s POST /echo with Idempotency-Key under npm run dev:aws: one run per key, the same bytes for every request', async t => {
  await idempotencyScenario(t, url)
})

// The Done-when of large results, as a user runs it: `curl -L '…/bytes?size=52428800&delay=1'
// -o out.bin`: 50 MiB, byte i = i % 251, through a 303 to the S3 emulator.
t.test('npm run dev:aws: a 50 MiB result through S3, byte for byte', async t => {
  const directory = mkdtempSync(join(tmpdir(), 'large-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))
  const out = join(directory, 'out.bin')
  const size = 52_428_800
  const answer = await curl(['-L', '-o', out, `${url}/bytes?size=${size}&delay=1`])
  t.equal(answer.status, 200)
  t.match(answer.headers, /content-type: application\/octet-stream/i)
  const body = readFileSync(out)
  t.equal(body.length, size)
  t.ok(body.equals(pattern(size)), 'byte i is i % 251')
})

// The Done-when of issue 29, as a user runs it: `curl -L -F file=@…` to the example's POST
// /upload, and `curl -L --data-binary @…` to POST /echo: the upload streams to the S3 emulator as
// it arrives, back to the job's replay, and (echo) out through the S3 result path. Correctness
// only: the memory it costs is bench/upload.ts's (200 MiB there).
t.test('npm run dev:aws: a multipart upload reaches POST /upload intact, and POST /echo hands a large body back byte for byte', async t => {
  const size = 48 * 1024 * 1024 + 12_345
  const directory = mkdtempSync(join(tmpdir(), 'uploads-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))
  const file = join(directory, 'in.bin')
  const hash = createHash('sha256')
  const out = createWriteStream(file)
  for (let left = size; left > 0; left -= 1024 * 1024) {
    const chunk = randomBytes(Math.min(1024 * 1024, left))
    hash.update(chunk)
    out.write(chunk)
  }
  await new Promise<void>(resolve => out.end(() => resolve()))
  const sha256 = hash.digest('hex')

  const uploaded = await curl(['-L', '-F', 'note=hello', '-F', `file=@${file}`, `${url}/upload?delay=1`])
  t.equal(uploaded.status, 200)
  t.same(JSON.parse(uploaded.body), { files: [{ field: 'file', filename: 'in.bin', bytes: size, sha256 }], fields: { note: 'hello' } })

  const back = join(directory, 'back.bin')
  const echoed = await curl(['-L', '--data-binary', `@${file}`, '-H', 'content-type: application/octet-stream', '-o', back, `${url}/echo?delay=1`])
  t.equal(echoed.status, 200, 'S3\'s own 200 at the end of the 303s')
  t.equal(createHash('sha256').update(readFileSync(back)).digest('hex'), sha256, 'byte for byte')
})

// Last: a worker's long poll may outlive the worker for up to 20 s on the emulator (as on SQS),
// and would take a later scenario's message out of sight for the queue's 60 s.
t.test('npm run dev:aws: its export lines, pasted into a shell, point npm run worker and npm start at its emulators', async t => {
  await devAws.waitFor(line => typeof line.msg === 'string' && line.msg.startsWith('emulators ready'))
  const pasted = devAws.text.filter(line => line.startsWith('export ')).join('\n')
  t.match(pasted, /^export JOBS_QUEUE_URL='http:\/\/127\.0\.0\.1:\d+\/\d+\/jobs'$/m)
  t.match(pasted, /^export AWS_REGION='us-east-1'$/m)

  // Another terminal: nothing but the pasted lines, and no AWS config file to fall back on.
  const children: Child[] = []
  t.teardown(() => { for (const child of children) child.process.kill('SIGKILL') })
  const terminal = (script: string, env: Record<string, string> = {}): Child => {
    const child = startCommand('sh', ['-c', `${pasted}\nexec "${process.execPath}" --import tsx ${script}`], { AWS_CONFIG_FILE: '/nonexistent', ...env })
    children.push(child)
    return child
  }
  const worker = terminal('example/worker.ts')
  const server = terminal('example/server.ts', { PORT: '0', HOST: '127.0.0.1', WAIT_SECONDS: '1' })
  await worker.waitFor(line => line.msg === 'worker started')
  const response = await follow(`${await listeningUrl(server)}/payload?delay=1.5`)
  t.equal(response.status, 200, 'a job accepted by npm start, run on the emulators\' queue and table')
  t.equal(await response.text(), '{"MESSAGE":"It took 1.5 seconds to generate this."}')
  t.equal(await stopChild(worker), 0)
  t.equal(await stopChild(server), 0)
})

t.test('npm run dev:aws stops cleanly on SIGTERM', async t => {
  t.equal(await stopChild(devAws), 0)
})
