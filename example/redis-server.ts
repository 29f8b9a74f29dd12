import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A redis-server of its own, for `npm run dev:redis` and the tests. */
export interface RedisServer {
  url: string
  port: number
  /** Stops the server (SIGTERM), waiting for it to exit. */
  stop (): Promise<void>
  /** Starts it again on the same port and data folder (after `stop()`), with `args` added. */
  restart (...args: string[]): Promise<void>
  close (): Promise<void>
}

/** A port of 127.0.0.1 that nothing listens on now. */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise(resolve => server.close(resolve))
  return port
}

/**
 * Starts `redis-server` from the PATH (Debian's `redis-server` package; `REDIS_SERVER` names
 * another binary) on a free port of 127.0.0.1, with a data folder of its own under the system's
 * temporary folder, no snapshots and no append-only file unless `args` ask for them.
 */
export async function startRedisServer (args: string[] = []): Promise<RedisServer> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'flr-redis-'))
  let child: ChildProcess | undefined
  const start = async (extra: string[]): Promise<void> => {
    child = spawn(process.env.REDIS_SERVER ?? 'redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', ...args, ...extra
    ], { stdio: ['ignore', 'pipe', 'pipe'] })
    await ready(child)
  }
  const stop = async (): Promise<void> => {
    const running = child
    child = undefined
    if (running === undefined || running.exitCode !== null) return
    const exited = new Promise(resolve => running.once('exit', resolve))
    running.kill('SIGTERM')
    await exited
  }
  await start([])
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    restart: async (...extra: string[]) => { await start(extra) },
    close: async () => {
      await stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** Resolves once the server says it accepts connections; rejects if it exits first. */
async function ready (child: ChildProcess): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let output = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('Ready to accept connections')) resolve()
    })
    child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.once('error', reject)
    child.once('exit', code => { reject(new Error(`redis-server exited (${String(code)}): ${output.slice(-2000)}`)) })
  })
}
