import { randomBytes } from 'node:crypto'

/** A small seeded PRNG (mulberry32): the same seed, the same run. */
export function random (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6D2B79F5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** Helpers over a PRNG. */
export function pick<T> (next: () => number, items: readonly T[]): T {
  return items[Math.floor(next() * items.length)] as T
}

export function int (next: () => number, max: number): number {
  return Math.floor(next() * max)
}

/** The seed of a randomized run: `SEED` from the environment, or a fresh one (printed by the caller). */
export function seedFromEnv (): number {
  const raw = process.env.SEED
  return raw === undefined || raw === '' ? Math.floor(Math.random() * 2 ** 31) : Number(raw)
}

/**
 * Random bytes that `@fastify/compress` (the example compresses) hands over intact. It passes a
 * body whose first bytes look like gzip or zlib through uncompressed, yet labelled with the
 * `Content-Encoding` it negotiated (fastify/fastify-compress#347), and about one random body in
 * a thousand does look so: the client then fails to decode it. A first byte of 0 never does.
 */
export function randomBody (size: number): Buffer<ArrayBuffer> {
  const body = randomBytes(size)
  if (size > 0) body[0] = 0
  return body
}
