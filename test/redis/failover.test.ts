import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { redisQueue, redisStore } from '../../src/index.js'
import { reconnectOnFailover } from '../../src/redis-client.js'
import { HEARTBEAT_MS } from '../../src/store/redis-watch.js'
import { startRedisServer, type RedisServer } from '../../example/redis-server.js'
import { buildTestApp, type TestApp } from '../helpers/app.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

// The connections' own faults, behind one endpoint (a proxy, as a sentinel-managed or cloud
// endpoint is): a failover that leaves open connections on the demoted primary, and a
// subscriber whose path goes silent with nothing closed.

async function server (t: Test): Promise<RedisServer> {
  const started = await startRedisServer()
  t.teardown(async () => { await started.close() })
  return started
}

async function app (t: Test, options: Parameters<typeof buildTestApp>[0]): Promise<TestApp> {
  const made = await buildTestApp(options)
  t.teardown(async () => {
    made.gates.openAll()
    await made.app.close()
  })
  // Ready: a worker that is never asked anything starts consuming all the same.
  await made.app.ready()
  return made
}

async function control (t: Test, url: string): Promise<Redis> {
  const client = new Redis(url)
  t.teardown(() => { client.disconnect() })
  return client
}

t.test('READONLY and LOADING reconnect and send again; other errors do not', async t => {
  t.equal(reconnectOnFailover(new Error('READONLY You can\'t write against a read only replica.')), 2)
  t.equal(reconnectOnFailover(new Error('LOADING Redis is loading the dataset in memory')), 2)
  t.equal(reconnectOnFailover(new Error('ERR Error running script (call to f_0): @user_script:1: -READONLY You can\'t write against a read only replica.')), 2, 'Redis 6 wraps a script\'s')
  t.equal(reconnectOnFailover(new Error('OOM command not allowed')), false)
})

t.test('a failover behind a stable endpoint: the connections on the demoted primary move to the new one, and jobs go through again', async t => {
  const first = await server(t)
  const second = await server(t)
  const [one, two] = [await control(t, first.url), await control(t, second.url)]
  await two.call('REPLICAOF', '127.0.0.1', String(first.port))
  const proxy = await startTcpProxy(t, first.port)
  const url = proxy.url
  // One replica accepts (the producer, the store, the subscriber), the other runs the jobs (the worker).
  const front = await app(t, { queue: redisQueue({ url }), store: redisStore({ url }), consume: false, waitSeconds: 10 })
  await app(t, { queue: redisQueue({ url }), store: redisStore({ url }), consume: true, waitSeconds: 10 })
  const post = async (): Promise<Awaited<ReturnType<typeof front.app.inject>>> =>
    await front.app.inject({ method: 'POST', url: '/job/a?open=1', payload: 'hello', headers: { 'content-type': 'text/plain' } })
  t.equal((await post()).statusCode, 201, 'before: the job runs through the queue')

  // The failover, as a sentinel does it: the replica promoted, the old primary demoted to its
  // replica, the endpoint leading new connections to the new primary.
  await two.call('REPLICAOF', 'NO', 'ONE')
  await one.call('REPLICAOF', '127.0.0.1', String(second.port))
  proxy.target(second.port)
  t.ok(proxy.connections.every(connection => connection.port === first.port), 'every open connection still on the demoted one')

  // Writes that the demoted node refuses drop their connection: a request may get a 503 while
  // they move, never more than a few. The client tries again after Retry-After, as told.
  let answer = await post()
  let refused = 0
  for (; answer.statusCode === 503 && refused < 10; refused++) {
    await new Promise(resolve => setTimeout(resolve, Number(answer.headers['retry-after']) * 1000))
    answer = await post()
  }
  t.equal(answer.statusCode, 201, `jobs run again (after ${refused} refused)`)
  t.equal(answer.body, 'hello')
  for (let i = 0; i < 5; i++) t.equal((await post()).statusCode, 201, 'and keep running')
  t.ok(Number(await two.dbsize()) > 0, 'on the new primary')
})

t.test('a subscriber whose path goes silent is noticed by its heartbeat: waiting requests still wake when their job ends', async t => {
  const redis = await server(t)
  const proxy = await startTcpProxy(t, redis.port)
  const waitSeconds = 25
  // The front's change feed goes through the proxy; its queue and the worker talk to Redis directly.
  const front = await app(t, { queue: redisQueue({ url: redis.url }), store: redisStore({ url: proxy.url }), consume: false, waitSeconds })
  const worker = await app(t, { queue: redisQueue({ url: redis.url }), store: redisStore({ url: redis.url }), consume: true, waitSeconds })
  const run = async (name: string): Promise<{ status: number, ms: number }> => {
    const started = Date.now()
    const answer = front.app.inject({ method: 'POST', url: `/job/${name}`, payload: name, headers: { 'content-type': 'text/plain' } })
    await worker.ran(name)
    worker.gates.open(name)
    const { statusCode } = await answer
    return { status: statusCode, ms: Date.now() - started }
  }
  t.equal((await run('before')).status, 201)
  const subscribers = proxy.connections.filter(connection => connection.subscriber)
  t.equal(subscribers.length, 1, 'one subscriber connection')
  // A NAT that forgot the connection: no byte passes either way, nothing is closed.
  proxy.silence(connection => connection.subscriber)
  const silenced = await run('silenced')
  t.equal(silenced.status, 201, 'the waiting request got its result')
  // Two heartbeats find the silence; the new subscriber reads the watched job at once. Without
  // them, the wait would last its whole waitSeconds.
  t.ok(silenced.ms < 2 * HEARTBEAT_MS + 3000, `woken in ${silenced.ms} ms, not after ${waitSeconds} s`)
  // The heartbeat read the job at once; the new subscription comes on ioredis's reconnection
  // back-off, which nothing here signals: a bounded wait for it.
  for (let i = 0; i < 200 && !proxy.connections.some(connection => connection.subscriber && !connection.silent); i++) {
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  t.ok(proxy.connections.some(connection => connection.subscriber && !connection.silent), 'a new subscriber connection')
  const after = await run('after')
  t.equal(after.status, 201)
  t.ok(after.ms < HEARTBEAT_MS, `and the next one wakes at once (${after.ms} ms)`)

  // A path deaf to every subscriber, the new ones too: each heartbeat that finds it reads the
  // watched jobs, so a wait still ends soon after its job.
  proxy.silenceSubscribers(true)
  proxy.silence(connection => connection.subscriber)
  const deaf = await run('deaf')
  t.equal(deaf.status, 201, 'the job\'s result')
  t.ok(deaf.ms < 2 * HEARTBEAT_MS + 3000, `in ${deaf.ms} ms`)
})
