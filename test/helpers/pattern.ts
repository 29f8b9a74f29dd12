/**
 * `size` bytes, byte i = `period` pattern's byte i % period (byte i = i % 251 by default: what the
 * example's /bytes sends). Filled natively from one period: building them one by one in
 * JavaScript (`Array.from`, a loop) cost seconds of CPU per test file at tens of MiB.
 */
export function pattern (size: number, step = 1, period = 251): Buffer {
  const one = Buffer.allocUnsafe(period)
  for (let i = 0; i < period; i++) one[i] = (i * step) % 256
  return Buffer.alloc(size, one)
}
