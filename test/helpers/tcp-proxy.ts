import { once } from 'node:events'
import { createConnection, createServer } from 'node:net'
import type { Test } from 'tap'

/** One connection through a {@link TcpProxy}. */
export interface ProxiedConnection {
  /** The port it was sent to. */
  port: number
  /** Whether its client sent a SUBSCRIBE (a Redis subscriber connection). */
  subscriber: boolean
  /** Whether its bytes are dropped, both ways, with nothing closed. */
  silent: boolean
  /** Destroys both of its sockets. */
  cut: () => void
}

/** A TCP proxy on a free port of 127.0.0.1, in front of a Redis server that it can change or go silent for. */
export interface TcpProxy {
  url: string
  /** The open connections, oldest first (closed ones leave). */
  connections: ProxiedConnection[]
  /** Where new connections go from now on; open ones stay where they are (a stable endpoint after a failover). */
  target: (port: number) => void
  /** New connections go silent from their start while `true` (a server or a path that answers nothing). */
  silenceNew: (silent: boolean) => void
  /** Accepts the connections, which become {@link ProxiedConnection.silent} (dropped bytes, nothing closed). */
  silence: (which: (connection: ProxiedConnection) => boolean) => void
  /** Subscriber connections go silent once they subscribe while `true` (a path deaf to them all). */
  silenceSubscribers: (silent: boolean) => void
  /** Destroys the silent connections: what the path tells at last, or a reset. */
  cutSilent: () => void
}

/**
 * Starts a proxy to `port` of 127.0.0.1 that can move new connections elsewhere (a failover
 * behind one endpoint) and make connections go silent: every byte dropped, both ways, and nothing
 * closed, as a NAT that forgot the connection, a partition or a paused server does. Closed with `t`.
 */
export async function startTcpProxy (t: Test, port: number): Promise<TcpProxy> {
  let target = port
  let silentNew = false
  let deafToSubscribers = false
  const connections: ProxiedConnection[] = []
  const server = createServer(client => {
    const upstream = createConnection({ host: '127.0.0.1', port: target })
    const connection: ProxiedConnection = {
      port: target,
      subscriber: false,
      silent: silentNew,
      cut: () => { client.destroy(); upstream.destroy() }
    }
    connections.push(connection)
    for (const socket of [client, upstream]) {
      socket.on('error', () => {})
      socket.on('close', () => {
        connection.cut()
        const at = connections.indexOf(connection)
        if (at >= 0) connections.splice(at, 1)
      })
    }
    client.on('data', (chunk: Buffer) => {
      if (/subscribe/i.test(chunk.toString('latin1'))) {
        connection.subscriber = true
        if (deafToSubscribers) connection.silent = true
      }
      if (!connection.silent) upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => { if (!connection.silent) client.write(chunk) })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    for (const connection of [...connections]) connection.cut()
    server.close()
    await once(server, 'close')
  })
  return {
    url: `redis://127.0.0.1:${(server.address() as { port: number }).port}`,
    connections,
    target: next => { target = next },
    silenceNew: silent => { silentNew = silent },
    silenceSubscribers: silent => { deafToSubscribers = silent },
    silence: which => { for (const connection of connections) if (which(connection)) connection.silent = true },
    cutSilent: () => { for (const connection of [...connections]) if (connection.silent) connection.cut() }
  }
}
