import { startExampleServer } from './server.js'

/**
 * The example server (`npm start`, embedded default) in its own process, with `clients`
 * requests waiting on it at once: its peak RSS, idle and loaded.
 */
export async function memory (clients: number): Promise<{ clients: number, idleMiB: number, peakMiB: number }> {
  const server = await startExampleServer({ WAIT_SECONDS: '20' })
  try {
    await (await fetch(`${server.url}/health`)).arrayBuffer()
    const idle = server.peakRssMiB()
    // The jobs outlast the measurement (the example runs 10 at a time): every request is
    // accepted and waiting while the peak is read.
    const stop = new AbortController()
    const waiting = Array.from({ length: clients }, async () => await fetch(`${server.url}/payload?delay=60`, { signal: stop.signal }).catch(() => undefined))
    await new Promise(resolve => setTimeout(resolve, 5000))
    const peak = server.peakRssMiB()
    stop.abort()
    await Promise.all(waiting)
    return { clients, idleMiB: idle, peakMiB: peak }
  } finally {
    server.child.kill('SIGKILL')
  }
}
