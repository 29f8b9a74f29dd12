import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { emulatorClients, type Emulators } from '../example/emulators.js'
import { benchApp } from './lib.js'

/**
 * The bench app's worker in a process of its own, consuming `queueUrl` on the emulators, or the
 * Redis queue named `queueUrl` when `emulators` is `'redis'` (the server at `BENCH_REDIS_URL`):
 * as a Lambda worker (or a container elsewhere) is, so that results reach the waiting requests by
 * polling (DynamoDB) or by the store's pub/sub (Redis) only.
 */
export async function startWorkerProcess (emulators: Emulators | 'redis', queueUrl: string): Promise<{ close: () => Promise<void> }> {
  const target = emulators === 'redis'
    ? { BENCH_WORKER_REDIS_QUEUE: queueUrl }
    : { ...emulators.env, BENCH_WORKER_QUEUE_URL: queueUrl, BENCH_WORKER_TABLE: emulators.tableName }
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/worker-process.ts'], {
    env: { ...process.env, ...target },
    stdio: ['pipe', 'pipe', 'inherit']
  })
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', () => resolve())
    child.once('exit', code => reject(new Error(`bench worker exited (${code})`)))
  })
  return {
    async close () {
      child.stdin.end()
      await new Promise(resolve => child.once('exit', resolve))
    }
  }
}

// As the child: consume until stdin closes.
if (process.env.BENCH_WORKER_QUEUE_URL !== undefined || process.env.BENCH_WORKER_REDIS_QUEUE !== undefined) {
  const { app } = process.env.BENCH_WORKER_REDIS_QUEUE !== undefined
    ? await benchApp('redis', undefined, { consume: true }, process.env.BENCH_WORKER_REDIS_QUEUE)
    : await benchApp('emulators', { ...emulatorClients(process.env as Record<string, string>), tableName: process.env.BENCH_WORKER_TABLE as string }, { consume: true }, process.env.BENCH_WORKER_QUEUE_URL)
  console.log('ready')
  process.stdin.on('end', () => { void app.close().then(() => process.exit(0)) })
  process.stdin.resume()
}
