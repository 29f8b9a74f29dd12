import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'

/** An example entry point in a child process (as `npm start` / `npm run worker` run it). */
export interface Child {
  process: ChildProcess
  /** Resolves with the first log line (parsed pino JSON) that `match` accepts. */
  waitFor (match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>
  /** Every log line so far. */
  lines: Array<Record<string, unknown>>
}

export function startChild (script: string, env: Record<string, string>): Child {
  // A clean environment: tap's loaders and coverage hooks stay out of the child.
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const lines: Array<Record<string, unknown>> = []
  const waiters = new Set<{ match: (line: Record<string, unknown>) => boolean, resolve: (line: Record<string, unknown>) => void }>()
  createInterface({ input: child.stdout }).on('line', text => {
    let line: Record<string, unknown>
    try { line = JSON.parse(text) } catch { return }
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

/** Follows 303s (fetch does) and 202s (fetch does not) until the final response. */
export async function follow (url: string, init: RequestInit = {}): Promise<Response> {
  let response = await fetch(url, init)
  while (response.status === 202) {
    await response.arrayBuffer()
    response = await fetch(new URL(response.headers.get('location') ?? '', url))
  }
  return response
}
