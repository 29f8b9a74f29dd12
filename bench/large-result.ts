import { execFile, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'
import { buildApp } from '../example/app.js'
import { startEmulators } from '../example/emulators.js'
import { listen } from './lib.js'

const run = promisify(execFile)

/** Peak resident memory of a process, from /proc (Linux), in MiB. */
function peakMiB (pid: number): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN) / 1024
}

/**
 * What a large result costs the worker: `npm run worker` in a process of its own, on the SQS,
 * DynamoDB and S3 emulators, runs one job whose result is `bytes` long (the example's /bytes),
 * which goes to S3 in parts; its peak RSS idle, after a first 4 MiB result through S3, and after
 * the large one, and the body checked through curl -L.
 */
export async function largeResult (bytes: number): Promise<{ bytes: number, idleMiB: number, warmMiB: number, peakMiB: number, seconds: number }> {
  const emulators = await startEmulators({ s3: true })
  const worker = spawn(process.execPath, ['--import', 'tsx', 'example/worker.ts'], {
    env: { PATH: process.env.PATH ?? '', ...emulators.env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: worker.stdout }).on('line', line => { if (line.includes('worker started')) resolve() })
    worker.once('exit', code => reject(new Error(`worker exited (${code})`)))
  })
  const idle = peakMiB(worker.pid as number)
  // The HTTP side here, with the same backends (the environment the example reads).
  Object.assign(process.env, emulators.env)
  const { backendsFromEnv } = await import('../example/backends.js')
  const app = await buildApp({ ...backendsFromEnv(), consume: false, waitSeconds: 1 })
  const url = await listen(app)
  // A first result through S3 (4 MiB, the threshold) loads the S3 SDK and opens its connections:
  // what is left of the peak after it is what the large body costs.
  const warm = await run('curl', ['-sL', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', `${url}/bytes?size=4194304`])
  if (warm.stdout !== '200 4194304') throw new Error(`warm-up: ${warm.stdout}`)
  const warmPeak = peakMiB(worker.pid as number)
  const start = performance.now()
  const { stdout } = await run('curl', ['-sL', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', `${url}/bytes?size=${bytes}`])
  const seconds = (performance.now() - start) / 1000
  if (stdout !== `200 ${bytes}`) throw new Error(`large result: ${stdout}`)
  const peak = peakMiB(worker.pid as number)
  worker.kill('SIGTERM')
  await new Promise(resolve => worker.once('exit', resolve))
  await app.close()
  await emulators.close()
  return { bytes, idleMiB: idle, warmMiB: warmPeak, peakMiB: peak, seconds }
}
