import { buildApp } from './app.js'
import { backendsFromEnv, corsOriginsFromEnv, numberFromEnv } from './backends.js'
import { startRedisServer } from './redis-server.js'
import { exportLines } from './shell.js'

// `npm run dev:redis`: the example on Redis, offline. Starts redis-server from the PATH (Debian's
// `redis-server` package) on a free loopback port, and serves the example against it on
// $HOST:$PORT, running jobs too. The `export REDIS_URL=…` line it prints points `npm start` and `npm run worker`
// of other terminals at the same server: they share the work.
const redis = await startRedisServer()
process.env.REDIS_URL = redis.url
const app = await buildApp(
  { ...backendsFromEnv(), waitSeconds: numberFromEnv('WAIT_SECONDS', 25) },
  { logger: { level: process.env.LOG_LEVEL ?? 'info' } },
  corsOriginsFromEnv()
)
await app.listen({ port: numberFromEnv('PORT', 3000), host: process.env.HOST ?? '127.0.0.1' })
// The line to paste into another terminal, as `npm run dev:aws` prints its own.
process.stdout.write(['', '# redis-server is ready. To point `npm start` or `npm run worker` in another terminal at it, paste:', exportLines({ REDIS_URL: redis.url })].join('\n'))
app.log.info({ REDIS_URL: redis.url }, 'redis-server ready: the export line above points `npm start` and `npm run worker` at it')

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void (async () => {
      await app.close()
      await redis.close()
      process.exit(0)
    })()
  })
}
