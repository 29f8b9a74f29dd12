import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { redisQueue, redisStore } from '../../src/index.js'
import { startRedisServer, type RedisServer } from '../../example/redis-server.js'
import { buildTestApp, closeTestApp, type TestApp } from '../helpers/app.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'

// A Redis that answers nothing and refuses nothing (a paused server, a path that drops every
// packet): the client still hears 503 with Retry-After well within the platform timeouts of
// docs/redis.md (30 s at the shortest), and no job is left half-written.

/** Well under the shortest platform timeout of docs/redis.md (30 s to the first byte). */
const PROMPT_MS = 20_000

async function setup (t: Test, through: 'queue' | 'store'): Promise<{ test: TestApp, proxy: TcpProxy, control: Redis, redis: RedisServer }> {
  const redis = await startRedisServer()
  t.teardown(async () => { await redis.close() })
  const proxy = await startTcpProxy(t, redis.port)
  const url = (which: 'queue' | 'store'): string => which === through ? proxy.url : redis.url
  const test = await buildTestApp({ queue: redisQueue({ url: url('queue') }), store: redisStore({ url: url('store') }), consume: false, waitSeconds: 1 })
  t.teardown(async () => { await test.app.close() })
  const control = new Redis(redis.url)
  t.teardown(() => { control.disconnect() })
  return { test, proxy, control, redis }
}

async function post (test: TestApp): Promise<{ status: number, retryAfter: unknown, code: unknown, ms: number }> {
  const started = Date.now()
  const answer = await test.app.inject({ method: 'POST', url: '/job/a', payload: 'x', headers: { 'content-type': 'text/plain', prefer: 'respond-async' } })
  return { status: answer.statusCode, retryAfter: answer.headers['retry-after'], code: answer.statusCode === 202 ? undefined : answer.json().code, ms: Date.now() - started }
}

/** The jobs the store holds with a status (a removed keyless job leaves nothing; a keyed one a tombstone without one). */
async function jobs (control: Redis): Promise<number> {
  const keys = await control.keys('{flr:*}:job')
  const statuses = await Promise.all(keys.map(async key => await control.hget(key, 'st')))
  return statuses.filter(status => status !== null).length
}

t.test('the queue hung: 503 with Retry-After within the tries of the send, and the job removed', async t => {
  const { test, proxy, control } = await setup(t, 'queue')
  t.equal((await post(test)).status, 202, 'up: accepted')
  t.equal(await jobs(control), 1)
  proxy.silenceNew(true)
  proxy.silence(() => true)
  const hung = await post(test)
  t.match(hung, { status: 503, retryAfter: '1', code: 'FST_LONG_RUNNING_ENQUEUE_FAILED' })
  t.ok(hung.ms < PROMPT_MS, `answered in ${hung.ms} ms`)
  t.equal(await jobs(control), 1, 'the job that could not be queued is gone (the store answered)')
  proxy.silenceNew(false)
  proxy.cutSilent()
  const back = await post(test)
  t.equal(back.status, 202, 'the path back: accepted again')
})

t.test('the queue\'s connection went silent alone: the timed-out send drops it, and the next try goes through on a new one', async t => {
  const { test, proxy } = await setup(t, 'queue')
  t.equal((await post(test)).status, 202)
  proxy.silence(() => true)
  const answer = await post(test)
  t.equal(answer.status, 202, `accepted, in ${answer.ms} ms`)
  t.ok(proxy.connections.some(connection => !connection.silent), 'on a new connection')
})

t.test('the store hung: 503 with Retry-After soon after its command timeout, not after the removal\'s tries; nothing half-written', async t => {
  const { test, proxy, control } = await setup(t, 'store')
  t.equal((await post(test)).status, 202)
  proxy.silenceNew(true)
  proxy.silence(() => true)
  const hung = await post(test)
  t.match(hung, { status: 503, retryAfter: '1' })
  t.ok(hung.ms < PROMPT_MS, `answered in ${hung.ms} ms`)
  proxy.silenceNew(false)
  proxy.cutSilent()
  // The removal goes on in the background, through the store once it answers again. A client
  // tries again after Retry-After, as told, while the store's connection comes back.
  let back = await post(test)
  for (let tries = 0; back.status === 503 && tries < 20; tries++) {
    await new Promise(resolve => setTimeout(resolve, Number(back.retryAfter) * 1000))
    back = await post(test)
  }
  t.equal(back.status, 202, 'the store back: accepted again')
  t.equal(await jobs(control), 2, 'the two accepted jobs, none of the refused one')
  t.equal(Number(await control.llen('bull:long-running-jobs:wait')), 2, 'two messages: none for the refused one')
})

t.test('the worker\'s connections went silent for good (a NAT that forgot them): it drops them once they owe a reply past SILENT_SOCKET_MS, and takes jobs again on new ones', async t => {
  const redis = await startRedisServer()
  t.teardown(async () => { await redis.close() })
  const proxy = await startTcpProxy(t, redis.port)
  // The front and the worker are two processes' worth of apps: a job accepted by the front can
  // only run if the worker fetches it (a worker's own app would run it here, without fetching).
  const front = await buildTestApp({ queue: redisQueue({ url: redis.url }), store: redisStore({ url: redis.url }), consume: false, waitSeconds: 1 })
  const worker = await buildTestApp({ queue: redisQueue({ url: proxy.url }), store: redisStore({ url: redis.url }), consume: true })
  t.teardown(async () => { await Promise.all([closeTestApp(front), closeTestApp(worker)]) })
  await worker.app.ready()
  worker.gates.open('a')
  t.equal((await post(front)).status, 202)
  await worker.ran('a', 1)
  const forgotten = proxy.connections.length
  t.ok(forgotten >= 2, `the worker's connections (${forgotten}: BullMQ's commands and its blocking reads) go silent`)
  proxy.silence(() => true)
  t.equal((await post(front)).status, 202, 'a job queued meanwhile (the front\'s path is fine)')
  // Without the socket timeout the worker would wait for its blocking read's reply for as long
  // as TCP retries (minutes), and take no job though Redis answers every new connection.
  await worker.ran('a', 2)
  t.pass('the worker took the job on new connections')
  t.ok(proxy.connections.some(connection => !connection.silent), 'on new connections')
})
