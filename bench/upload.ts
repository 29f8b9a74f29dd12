import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { startEmulators } from '../example/emulators.js'

const run = promisify(execFile)
const MiB = 1024 * 1024

/** Peak resident memory of a process, from /proc (Linux), in MiB. */
function peakMiB (pid: number): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN) / 1024
}

/** `bytes` random bytes in a file of `directory`, written a MiB at a time; resolves with its path and SHA-256. */
async function randomFile (directory: string, name: string, bytes: number): Promise<{ path: string, sha256: string }> {
  const path = join(directory, name)
  const out = createWriteStream(path)
  const hash = createHash('sha256')
  for (let left = bytes; left > 0; left -= MiB) {
    const chunk = randomBytes(Math.min(MiB, left))
    hash.update(chunk)
    if (!out.write(chunk)) await new Promise<void>(resolve => out.once('drain', () => resolve()))
  }
  await new Promise<void>(resolve => out.end(() => resolve()))
  return { path, sha256: hash.digest('hex') }
}

/** An example entry point in its own process; resolves once `ready` matches a log line, with the line. */
async function start (script: string, env: Record<string, string>, ready: RegExp): Promise<{ child: ChildProcess, line: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], { env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', line => { if (ready.test(line)) resolve(line) })
    child.once('exit', code => reject(new Error(`${script} exited (${code})`)))
  })
  return { child, line }
}

async function stop (child: ChildProcess): Promise<void> {
  child.kill('SIGTERM')
  await new Promise(resolve => child.once('exit', resolve))
}

/** `curl -L -F file=@path` to the example's `POST /upload`: checks the answer's SHA-256, resolves with the seconds it took. */
async function curlUpload (url: string, file: { path: string, sha256: string }, bytes: number): Promise<number> {
  const started = performance.now()
  const { stdout } = await run('curl', ['-sL', '-F', `file=@${file.path}`, `${url}/upload`], { maxBuffer: MiB })
  const seconds = (performance.now() - started) / 1000
  const answer = JSON.parse(stdout) as { files?: Array<{ bytes: number, sha256: string }> }
  const [got] = answer.files ?? []
  if (got?.bytes !== bytes || got.sha256 !== file.sha256) throw new Error(`upload answered ${stdout}`)
  return seconds
}

/**
 * `curl -L --data-binary @path` to the example's `POST /echo`, the answer written to a file:
 * checks that it comes back byte for byte (by SHA-256; over the bucket's threshold it comes back
 * through the S3 result path), resolves with the seconds it took.
 */
async function curlEcho (url: string, file: { path: string, sha256: string }, directory: string): Promise<number> {
  const started = performance.now()
  const out = join(directory, 'echoed.bin')
  await run('curl', ['-sSfL', '--data-binary', `@${file.path}`, '-H', 'content-type: application/octet-stream', '-o', out, `${url}/echo`])
  const seconds = (performance.now() - started) / 1000
  const echoed = createHash('sha256').update(readFileSync(out)).digest('hex')
  if (echoed !== file.sha256) throw new Error(`POST /echo answered other bytes (SHA-256 ${echoed}, sent ${file.sha256})`)
  rmSync(out)
  return seconds
}

export interface UploadFigures {
  bytes: number
  /** `npm start` on the emulators (SQS, DynamoDB, S3), its jobs run by `npm run worker`: the HTTP process alone. */
  http: { idleMiB: number, warmMiB: number, peakMiB: number, seconds: number }
  /** `npm run dev:aws`: one process with the HTTP side, the worker Lambda and the three emulators. */
  devAws: { idleMiB: number, warmMiB: number, peakMiB: number, seconds: number }
  /** Through `npm run dev:aws`, after the above: the same file to `POST /echo`, back byte for byte through the S3 result path. */
  echoSeconds: number
}

/**
 * What an upload of `bytes` costs the process that receives it: a `curl -L -F` of a random file
 * to the example's `POST /upload`, which streams it to S3 as it arrives and hashes every part in
 * the job. Peak RSS idle, after a first 8 MiB upload (the S3 SDK loaded, its connections open),
 * and after the large one; the answer's SHA-256 is checked.
 */
export async function upload (bytes: number): Promise<UploadFigures> {
  const directory = mkdtempSync(join(tmpdir(), 'upload-bench-'))
  try {
    const warm = await randomFile(directory, 'warm.bin', 8 * MiB)
    const large = await randomFile(directory, 'large.bin', bytes)
    const measure = async (pid: number, url: string): Promise<{ idleMiB: number, warmMiB: number, peakMiB: number, seconds: number }> => {
      const idleMiB = peakMiB(pid)
      await curlUpload(url, warm, 8 * MiB)
      const warmMiB = peakMiB(pid)
      const seconds = await curlUpload(url, large, bytes)
      return { idleMiB, warmMiB, peakMiB: peakMiB(pid), seconds }
    }

    const emulators = await startEmulators({ s3: true })
    const env = { ...emulators.env, PORT: '0', HOST: '127.0.0.1', WAIT_SECONDS: '5' }
    const worker = await start('example/worker.ts', env, /worker started/)
    const server = await start('example/server.ts', env, /Server listening/)
    const http = await measure(server.child.pid as number, /http:\/\/127\.0\.0\.1:\d+/.exec(server.line)?.[0] ?? '')
    await stop(server.child)
    await stop(worker.child)
    await emulators.close()

    const dev = await start('example/dev-aws.ts', { PORT: '0', HOST: '127.0.0.1', WAIT_SECONDS: '5' }, /Server listening/)
    const devUrl = /http:\/\/127\.0\.0\.1:\d+/.exec(dev.line)?.[0] ?? ''
    const devAws = await measure(dev.child.pid as number, devUrl)
    const echoSeconds = await curlEcho(devUrl, large, directory)
    await stop(dev.child)
    return { bytes, http, devAws, echoSeconds }
  } finally {
    rmSync(directory, { recursive: true, force: true })
  }
}

// `npx tsx bench/upload.ts [MiB]`: this benchmark alone (200 MiB by default).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const figures = await upload(Number(process.argv[2] ?? 200) * MiB)
  console.log(JSON.stringify(figures, (_key, value: unknown) => typeof value === 'number' ? Math.round(value * 10) / 10 : value, 2))
}
