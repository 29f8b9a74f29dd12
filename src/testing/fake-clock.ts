import type { Clock } from '../clock.js'

interface Timer { at: number, callback: () => void }

/**
 * A clock the test moves: it starts at the real time and then stands still; timers fire only
 * when `advance()` passes their time, in order. Pass it to the plugin and to the adapters a
 * test builds itself (their `clock` option): their expiry, delays and DynamoDB's `:now` then
 * keep its time too. `storeContract` hands one to a store for its expiry checks.
 *
 * With `autoAdvanceUpToMs`, timers of at most that delay fire at once (on the next turn of the
 * event loop, the clock moved by their delay): retry back-offs cost nothing, while timeouts and
 * lease renewals still wait for `advance()`.
 *
 * @example
 * const clock = new FakeClock()
 * const store = memoryStore({ clock })
 * await store.create({ id, waitSeconds: 1, createdAt: clock.now(), expiresAt: clock.now() + 1000 })
 * await clock.advance(1000) // the job has expired: store.get(id) resolves undefined
 */
export class FakeClock implements Clock {
  #now = Date.now()
  #next = 0
  readonly #timers = new Map<number, Timer>()
  readonly #autoMs: number
  readonly #waiters = new Set<() => void>()

  constructor (options: { autoAdvanceUpToMs?: number } = {}) {
    this.#autoMs = options.autoAdvanceUpToMs ?? -1
  }

  now (): number {
    return this.#now
  }

  setTimeout (callback: () => void, ms: number): unknown {
    const id = this.#next++
    if (ms <= this.#autoMs) {
      setImmediate(() => {
        this.#now += ms
        callback()
      })
      return id
    }
    this.#timers.set(id, { at: this.now() + ms, callback })
    const woken = [...this.#waiters]
    this.#waiters.clear()
    for (const wake of woken) wake()
    return id
  }

  clearTimeout (handle: unknown): void {
    this.#timers.delete(handle as number)
  }

  /** Timers waiting for `advance()`. */
  get pending (): number {
    return this.#timers.size
  }

  /** Resolves once at least `count` timers wait for `advance()` (an attempt has armed its timeout, say). */
  async armed (count = 1): Promise<void> {
    while (this.#timers.size < count) await new Promise<void>(resolve => this.#waiters.add(resolve))
  }

  /**
   * Moves time forward by `ms`, firing every timer due on the way in order of its time, and
   * letting the promise chains each one starts run before the next.
   */
  async advance (ms: number): Promise<void> {
    const target = this.now() + ms
    for (;;) {
      const due = [...this.#timers.entries()].filter(([, timer]) => timer.at <= target).sort(([, a], [, b]) => a.at - b.at)[0]
      if (due === undefined) break
      const [id, timer] = due
      this.#timers.delete(id)
      this.#now = Math.max(this.#now, timer.at)
      timer.callback()
      await new Promise(resolve => setImmediate(resolve))
    }
    this.#now = target
  }
}
