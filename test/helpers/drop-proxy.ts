import { once } from 'node:events'
import { createConnection, createServer, type Socket } from 'node:net'
import type { Test } from 'tap'

/** A TCP proxy in front of `target` that cuts the connection of the first response it sees. */
export interface DropProxy {
  url: string
  /** Resolves once a response has been dropped (the server had answered; the client never saw it). */
  dropped: Promise<void>
}

/**
 * Starts a proxy on a free port of 127.0.0.1 that forwards every connection to `target`
 * (`http://127.0.0.1:port`), except that the first response's bytes never reach the client:
 * both sockets are destroyed when they arrive. This is a lost connection after the server
 * accepted the request, the case a retry with an Idempotency-Key must survive.
 */
export async function startDropProxy (t: Test, target: string): Promise<DropProxy> {
  const { hostname, port } = new URL(target)
  let drop = true
  let markDropped = (): void => {}
  const dropped = new Promise<void>(resolve => { markDropped = resolve })
  const sockets = new Set<Socket>()
  const server = createServer(client => {
    const upstream = createConnection({ host: hostname, port: Number(port) })
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      socket.on('error', () => {})
    }
    client.pipe(upstream)
    upstream.on('data', chunk => {
      if (drop) {
        drop = false
        client.destroy()
        upstream.destroy()
        markDropped()
        return
      }
      client.write(chunk)
    })
    upstream.on('end', () => client.end())
    client.on('close', () => upstream.destroy())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    server.close()
    await once(server, 'close')
  })
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, dropped }
}
