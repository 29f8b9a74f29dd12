import { connect, type Socket } from 'node:net'

/** A raw HTTP/1.1 upload to `path` on 127.0.0.1 whose body stops after `sent` of its announced `length` bytes. */
export function slowUpload (port: number, path: string, length: number, sent: number): { socket: Socket, received: () => string, closed: Promise<void> } {
  const socket = connect(port, '127.0.0.1')
  let received = ''
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => { received += chunk })
  const closed = new Promise<void>(resolve => socket.once('close', () => resolve()))
  socket.write(`POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\n\r\n${'x'.repeat(sent)}`)
  return { socket, received: () => received, closed }
}

/** What one caller's floods of the example got, by answer. */
export interface FloodCounts {
  /** `GET /bytes` asked with `Prefer: respond-async` and never read: 202s, 503s. */
  unreadAccepted: number
  unreadRefused: number
  /** Where the unread results are, oldest first. */
  unreadLocations: string[]
  /** Slow uploads the server cut (408) or refused (503), and those still open at the end. */
  slowCut: number
  slowRefused: number
  slowOpen: number
}

export interface FloodOptions {
  /** Bytes of each unread result. */
  resultBytes: number
  /** Unread results asked at once, again and again. */
  unreadConcurrency: number
  /** Slow uploads kept open (a new one replaces each the server ends). */
  slowUploads: number
  /** What each slow upload announces, and how often it sends one more byte. */
  slowAnnouncedBytes: number
  slowByteEveryMs: number
}

/** A running flood: `stop()` ends it and tells what it got. */
export interface Flood {
  /** Resolves once `count` unread results have been asked for and answered. */
  unreadSent (count: number): Promise<void>
  stop (): Promise<FloodCounts>
}

/**
 * One anonymous caller against the example (issue 26, point 6): results it asks for and never
 * reads, and uploads that send a byte now and then, both kept going until `stop()`.
 */
export function flood (url: string, options: FloodOptions): Flood {
  const counts: FloodCounts = { unreadAccepted: 0, unreadRefused: 0, unreadLocations: [], slowCut: 0, slowRefused: 0, slowOpen: 0 }
  const state = { running: true }
  const waiters = new Set<{ count: number, resolve: () => void }>()
  const answered = (): void => {
    for (const waiter of waiters) {
      if (counts.unreadAccepted + counts.unreadRefused >= waiter.count) {
        waiters.delete(waiter)
        waiter.resolve()
      }
    }
  }
  const unread = async (): Promise<void> => {
    while (state.running) {
      const response = await fetch(`${url}/bytes?size=${options.resultBytes}`, { headers: { prefer: 'respond-async' } })
      await response.arrayBuffer()
      if (response.status === 202) {
        counts.unreadAccepted++
        counts.unreadLocations.push(response.headers.get('location') ?? '')
      } else counts.unreadRefused++
      answered()
    }
  }
  const sockets = new Set<Socket>()
  const slow = (): void => {
    if (!state.running) return
    const upload = slowUpload(Number(new URL(url).port), '/echo', options.slowAnnouncedBytes, 1)
    sockets.add(upload.socket)
    upload.socket.on('error', () => {})
    const drip = setInterval(() => upload.socket.write('x'), options.slowByteEveryMs)
    void upload.closed.then(() => {
      clearInterval(drip)
      sockets.delete(upload.socket)
      if (upload.received().startsWith('HTTP/1.1 408')) counts.slowCut++
      else if (upload.received().startsWith('HTTP/1.1 503')) counts.slowRefused++
      slow()
    })
    // An answer before the body is complete ends this upload: the server will not read on.
    upload.socket.once('data', () => upload.socket.destroy())
  }
  const loops = Array.from({ length: options.unreadConcurrency }, async () => await unread())
  for (let i = 0; i < options.slowUploads; i++) slow()
  return {
    async unreadSent (count) {
      if (counts.unreadAccepted + counts.unreadRefused >= count) return
      await new Promise<void>(resolve => waiters.add({ count, resolve }))
    },
    async stop () {
      state.running = false
      await Promise.all(loops)
      counts.slowOpen = sockets.size
      for (const socket of sockets) socket.destroy()
      return counts
    }
  }
}
