import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance } from 'fastify'

/**
 * The seed's scheme, as a yardstick: the first request redirects at once; each hop sleeps its
 * back-off (1 s, then ×1.5, at most 28 s), checks once, and answers or redirects again.
 */
export async function seedSchemeApp (): Promise<FastifyInstance> {
  const app = Fastify()
  const done = new Map<string, unknown>()
  app.get<{ Querystring: { ms: string } }>('/sleep', async (request, reply) => {
    const id = randomUUID()
    const ms = Number(request.query.ms)
    setTimeout(() => done.set(id, { slept: ms, endedAt: Date.now() }), ms)
    return await reply.code(303).header('location', `/seed/${id}?n=1`).send()
  })
  app.get<{ Params: { id: string }, Querystring: { n: string } }>('/seed/:id', async (request, reply) => {
    const n = Number(request.query.n)
    await sleep(Math.min(28, 1.5 ** (n - 1)) * 1000)
    const result = done.get(request.params.id)
    if (result !== undefined) return result
    return await reply.code(303).header('location', `/seed/${request.params.id}?n=${n + 1}`).send()
  })
  return app
}
