import type { ConsumeOptions, Consumer, Delivery, Disposition, JobQueue } from '../../src/index.js'

/**
 * A real queue for tests that drive deliveries by hand: `send` keeps the message, and the test
 * decides when (and how often) to hand it to `app.longRunning.handle`.
 */
export class RecordingQueue implements JobQueue {
  readonly sent: string[] = []
  maxMessageBytes = 256 * 1024
  failSends = false
  /** Calls of `send`, failed ones included. */
  attempts = 0
  readonly #waiting = new Set<() => void>()

  async send (body: string): Promise<void> {
    this.attempts += 1
    if (this.failSends) throw new Error('queue down')
    this.sent.push(body)
    for (const wake of this.#waiting) wake()
    this.#waiting.clear()
  }

  /** Resolves once `count` messages have been sent. */
  async sentCount (count: number): Promise<void> {
    while (this.sent.length < count) await new Promise<void>(resolve => this.#waiting.add(resolve))
  }

  consume (_handler: (delivery: Delivery) => Promise<Disposition>, _options: ConsumeOptions): Consumer {
    throw new Error('RecordingQueue is driven by the test')
  }
}

/** A delivery of `body` as a queue would make it. */
export function delivery (body: string, receiveCount = 1): Delivery & { extended: number[] } {
  const extended: number[] = []
  return { body, receiveCount, extended, extend: async (seconds) => { extended.push(seconds) } }
}
