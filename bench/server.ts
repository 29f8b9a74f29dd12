import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

/** A port free right now (the bench's own, short-lived race is acceptable; tests never do this). */
async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise(resolve => server.close(resolve))
  return port
}

/**
 * The example server (`npm start`) in a process of its own, so that the clients do not share
 * its core; quiet (`LOG_LEVEL=warn`), so that logging does not weigh on the figures.
 */
export async function startExampleServer (env: Record<string, string>): Promise<{ url: string, child: ChildProcess, peakRssMiB: () => number }> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', 'example/server.ts'], {
    env: { PATH: process.env.PATH ?? '', PORT: String(port), LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'inherit', 'inherit']
  })
  const url = `http://127.0.0.1:${port}`
  for (;;) {
    if (child.exitCode !== null) throw new Error('server exited')
    if (await fetch(`${url}/health`).then(response => response.ok, () => false)) break
    await sleep(50)
  }
  return {
    url,
    child,
    // Peak resident memory, from /proc (Linux).
    peakRssMiB: () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? Number.NaN) / 1024
  }
}
