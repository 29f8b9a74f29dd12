/**
 * Reads until `done` accepts what was read: for state that another process or a store owns,
 * with no hook to wait on. Each read is a real request (a status poll), never a sleep; after
 * `reads` of them the test fails instead of hanging.
 */
export async function pollUntil<T> (read: () => Promise<T>, done: (value: T) => boolean, reads = 10_000): Promise<T> {
  for (let i = 0; i < reads; i++) {
    const value = await read()
    if (done(value)) return value
    // A turn of the event loop between reads, so that the I/O being waited for can happen.
    await new Promise(resolve => setImmediate(resolve))
  }
  throw new Error(`still not done after ${reads} reads`)
}
