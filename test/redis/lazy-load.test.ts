import { spawnSync } from 'node:child_process'
import t from 'tap'

// The package imported in a child process (tsx), in a file apart from redis-backend.test.ts: the
// child's coverage, of another loader, would garble what test/redis/coverage-map.mjs counts.

t.test('importing the package loads neither ioredis nor bullmq; the first use of an adapter does', async t => {
  const script = (use: string): string => `const m = await import('./src/index.ts'); ${use}`
  const loaded = (use: string): string[] => {
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(use)], { env: { PATH: process.env.PATH ?? '', NODE_DEBUG: 'esm' }, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })
    return [...new Set([...child.stderr.matchAll(/node_modules\/(ioredis|bullmq)\//g)].map(match => match[1] as string))].sort()
  }
  t.same(loaded(''), [], 'import only')
  t.same(loaded("const q = m.redisQueue({ url: 'redis://127.0.0.1:1' }); await q.send('x').catch(() => {}); await q.close()"), ['bullmq', 'ioredis'], 'a send')
})
