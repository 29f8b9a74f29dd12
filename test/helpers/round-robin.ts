import { request as httpRequest, createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Test } from 'tap'

/** An HTTP proxy that sends each request to the next of its targets in turn. */
export interface RoundRobin {
  url: string
  /** Requests sent to each target, by target, and by path prefix (`/async-response` for the hops). */
  sent: Array<{ all: number, hops: number }>
  /** Takes a target out of the rotation (it died): its share goes to the others. */
  remove (target: string): void
}

/**
 * Starts a round-robin proxy on a free port of 127.0.0.1 in front of `targets`
 * (`http://127.0.0.1:port` each): request n goes to target n mod count, whatever the
 * connection it came on, as a load balancer without stickiness does. A target that fails
 * answers 502, as a load balancer would.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'te', 'trailer', 'upgrade'])

function withoutHopByHop (headers: IncomingMessage['headers']): IncomingMessage['headers'] {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name)))
}

export async function startRoundRobin (t: Test, targets: string[]): Promise<RoundRobin> {
  const live = [...targets]
  const sent = targets.map(() => ({ all: 0, hops: 0 }))
  let next = 0
  const forward = (incoming: IncomingMessage, outgoing: ServerResponse): void => {
    const target = live[next++ % live.length] as string
    const index = targets.indexOf(target)
    const counts = sent[index] as { all: number, hops: number }
    counts.all += 1
    if (incoming.url?.startsWith('/async-response') === true) counts.hops += 1
    const { hostname, port } = new URL(target)
    const upstream = httpRequest({ host: hostname, port, method: incoming.method, path: incoming.url, headers: withoutHopByHop(incoming.headers) }, answer => {
      // Hop-by-hop headers stay on their hop: the app's `Keep-Alive: timeout=72` passed on would
      // have clients reuse connections this proxy closes after its own 5 s (ECONNRESET).
      outgoing.writeHead(answer.statusCode ?? 502, withoutHopByHop(answer.headers))
      answer.pipe(outgoing)
    })
    upstream.on('error', () => {
      if (!outgoing.headersSent) outgoing.writeHead(502).end()
      else outgoing.destroy()
    })
    incoming.pipe(upstream)
  }
  const server = createServer(forward)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    sent,
    remove: target => { live.splice(live.indexOf(target), 1) }
  }
}
