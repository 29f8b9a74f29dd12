import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'

/** Peak resident memory of a process, from /proc (Linux). */
function peakRssMiB (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN) / 1024
}

/**
 * The example server (`npm start`, embedded default) in its own process, with `clients`
 * requests waiting on it at once: its peak RSS, idle and loaded.
 */
export async function memory (clients: number): Promise<{ clients: number, idleMiB: number, peakMiB: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'example/server.ts'], {
    env: { PATH: process.env.PATH, PORT: '0', WAIT_SECONDS: '20', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  try {
    const url = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', line => {
        const found = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line)?.[1]
        if (found !== undefined) resolve(found)
      })
      child.once('exit', () => reject(new Error('server exited')))
    })
    await (await fetch(`${url}/health`)).arrayBuffer()
    const idle = peakRssMiB(child.pid as number)
    // The jobs outlast the measurement (the example runs 10 at a time): every request is
    // accepted and waiting while the peak is read.
    const stop = new AbortController()
    const waiting = Array.from({ length: clients }, async () => await fetch(`${url}/payload?delay=60`, { signal: stop.signal }).catch(() => undefined))
    await new Promise(resolve => setTimeout(resolve, 5000))
    const peak = peakRssMiB(child.pid as number)
    stop.abort()
    await Promise.all(waiting)
    return { clients, idleMiB: idle, peakMiB: peak }
  } finally {
    child.kill()
  }
}
