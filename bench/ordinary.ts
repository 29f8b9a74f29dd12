import autocannon from 'autocannon'
import Fastify from 'fastify'
import longRunning from '../src/index.js'
import { listen } from './lib.js'

/**
 * Requests/s of an ordinary route with the plugin registered (and a long-running route beside
 * it) against bare Fastify; runs interleaved so that drift hits both alike.
 */
export async function ordinary (rounds: number, seconds: number): Promise<{ bare: number, plugin: number, ratio: number }> {
  const bare = Fastify()
  bare.get('/plain', async () => ({ plain: true }))
  const withPlugin = Fastify()
  await withPlugin.register(longRunning)
  withPlugin.get('/slow', { longRunning: true }, async () => 'slow')
  withPlugin.get('/plain', async () => ({ plain: true }))
  const urls = { bare: await listen(bare), plugin: await listen(withPlugin) }
  const totals = { bare: 0, plugin: 0 }
  for (let round = 0; round < rounds; round++) {
    for (const name of (round % 2 === 0 ? ['bare', 'plugin'] : ['plugin', 'bare']) as Array<'bare' | 'plugin'>) {
      const result = await autocannon({ url: `${urls[name]}/plain`, connections: 50, duration: seconds })
      totals[name] += result.requests.average
    }
  }
  await Promise.all([bare.close(), withPlugin.close()])
  return { bare: totals.bare / rounds, plugin: totals.plugin / rounds, ratio: totals.plugin / totals.bare }
}
