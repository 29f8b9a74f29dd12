import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Test } from 'tap'

/**
 * A small real app for one ecosystem case: `setup` registers the plugins under test (and
 * fastify-long-running, in the order the case is about), then it listens on a free port.
 */
export async function serve (t: Test, setup: (app: FastifyInstance) => Promise<void>, options: FastifyServerOptions = {}): Promise<{ app: FastifyInstance, url: string }> {
  const app = Fastify(options)
  t.teardown(async () => await app.close())
  await setup(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}` }
}

const run = promisify(execFile)

/** curl with `args` (and `input` on its stdin); resolves with the final response's status, headers (as text) and body. */
export async function curl (args: string[], input?: Buffer): Promise<{ status: number, body: string, bytes: Buffer, headers: string }> {
  const running = run('curl', ['-s', '-D', '-', ...args], { maxBuffer: 64 * 1024 * 1024, encoding: 'buffer' })
  running.child.stdin?.end(input)
  const { stdout } = await running
  // -D - prints every response's headers before its body: the last block is the final one's.
  let rest = stdout
  let headers = ''
  while (rest.subarray(0, 5).toString() === 'HTTP/') {
    const end = rest.indexOf('\r\n\r\n')
    headers = rest.subarray(0, end).toString()
    rest = rest.subarray(end + 4)
  }
  return { status: Number(/^HTTP\/[\d.]+ (\d+)/.exec(headers)?.[1]), body: rest.toString(), bytes: rest, headers }
}
