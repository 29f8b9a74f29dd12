import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import type { Test } from 'tap'

/** An example entry point in a child process (as `npm start` / `npm run worker` run it). */
export interface Child {
  process: ChildProcess
  /** Resolves with the first log line (parsed pino JSON) that `match` accepts. */
  waitFor (match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>
  /** Every log line so far. */
  lines: Array<Record<string, unknown>>
  /** Every line of its standard output that is no log line (not JSON). */
  text: string[]
}

export function startChild (script: string, env: Record<string, string>): Child {
  return startCommand(process.execPath, ['--import', 'tsx', script], env)
}

/** `command` in a child process, its standard output read as {@link startChild}'s. */
export function startCommand (command: string, args: string[], env: Record<string, string>): Child {
  const script = [command, ...args].join(' ')
  // A clean environment: tap's loaders and coverage hooks stay out of the child.
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const lines: Array<Record<string, unknown>> = []
  const text: string[] = []
  const waiters = new Set<{ match: (line: Record<string, unknown>) => boolean, resolve: (line: Record<string, unknown>) => void }>()
  createInterface({ input: child.stdout }).on('line', raw => {
    let line: Record<string, unknown>
    try { line = JSON.parse(raw) } catch {
      text.push(raw)
      return
    }
    lines.push(line)
    for (const waiter of waiters) {
      if (waiter.match(line)) {
        waiters.delete(waiter)
        waiter.resolve(line)
      }
    }
  })
  return {
    process: child,
    lines,
    text,
    async waitFor (match) {
      const seen = lines.find(match)
      if (seen !== undefined) return seen
      return await new Promise((resolve, reject) => {
        waiters.add({ match, resolve })
        child.once('exit', code => reject(new Error(`${script} exited (${code}) before the expected log line`)))
      })
    }
  }
}

/**
 * A starter for the children of one test: each gets `env` on top of its own, and every one
 * still running when the test ends is SIGKILLed.
 */
export function childProcesses (t: Test, env: Record<string, string> = {}): (script: string, extra?: Record<string, string>) => Child {
  const children: Child[] = []
  t.teardown(() => { for (const child of children) child.process.kill('SIGKILL') })
  return (script, extra = {}) => {
    const child = startChild(script, { ...env, ...extra })
    children.push(child)
    return child
  }
}

/** Stops a child with SIGTERM and resolves with its exit code (0: it shut down cleanly). */
export async function stopChild (child: Child): Promise<number | null> {
  if (child.process.exitCode !== null) return child.process.exitCode
  child.process.kill('SIGTERM')
  const [code] = await once(child.process, 'exit') as [number | null]
  return code
}

/** The URL a server child listens on, from Fastify's "Server listening at" line. */
export async function listeningUrl (child: Child): Promise<string> {
  const line = await child.waitFor(line => typeof line.msg === 'string' && line.msg.startsWith('Server listening'))
  const url = /http:\/\/127\.0\.0\.1:\d+/.exec(String(line.msg))?.[0]
  if (url === undefined) throw new Error(`no URL in ${String(line.msg)}`)
  return url
}

/** Follows 303s (fetch does) and 202s (fetch does not) until the final response. */
export async function follow (url: string, init: RequestInit = {}): Promise<Response> {
  let response = await fetch(url, init)
  while (response.status === 202) {
    await response.arrayBuffer()
    response = await fetch(new URL(response.headers.get('location') ?? '', url))
  }
  return response
}
