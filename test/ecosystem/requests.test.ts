import { AsyncLocalStorage } from 'node:async_hooks'
import cors from '@fastify/cors'
import { fastifyRequestContext } from '@fastify/request-context'
import { CreateQueueCommand } from '@aws-sdk/client-sqs'
import t, { type Test } from 'tap'
import { startEmulators } from '../../example/emulators.js'
import longRunning, { dynamoDbStore, sqsQueue, type LongRunningOptions } from '../../src/index.js'
import { curl, serve } from './serve.js'

declare module '@fastify/request-context' {
  interface RequestContextData { caller: string }
}

const emulators = await startEmulators()
t.teardown(() => emulators.close())
let queues = 0

/** The two backends: the embedded default, and SQS + DynamoDB on the emulators with a worker in the same app. */
async function backends (t: Test): Promise<Array<[string, LongRunningOptions]>> {
  const { QueueUrl } = await emulators.sqs.send(new CreateQueueCommand({ QueueName: `ecosystem-${queues++}` }))
  return [
    ['embedded', {}],
    ['emulators', {
      queue: sqsQueue({ queueUrl: QueueUrl as string, client: emulators.sqs, receiveBatchSize: 1 }),
      store: dynamoDbStore({ tableName: emulators.tableName, client: emulators.dynamodb }),
      consume: true,
      pollIntervalMs: 20
    }]
  ]
}

t.test('the plugin inside a prefixed plugin answers with Locations under that prefix', async t => {
  const { url } = await serve(t, async (app) => {
    await app.register(async (v1) => {
      await v1.register(longRunning, { waitSeconds: 0 })
      v1.get('/slow', { longRunning: true }, async () => ({ done: true }))
    }, { prefix: '/v1' })
  })
  const first = await fetch(`${url}/v1/slow`, { redirect: 'manual' })
  t.equal(first.status, 303)
  t.match(first.headers.get('location'), /^\/v1\/async-response\/[0-9a-f-]{36}\?hop=1$/)
  const final = await curl(['-L', `${url}/v1/slow`])
  t.equal(final.status, 200)
  t.equal(final.body, '{"done":true}')
})

t.test('@fastify/cors with origin: true: the result carries the CORS answer for the origin that fetches it', async t => {
  const { url } = await serve(t, async (app) => {
    await app.register(cors, { origin: true })
    await app.register(longRunning, { waitSeconds: 0 })
    app.get('/data', { longRunning: true }, async () => ({ data: 1 }))
  })
  const accepted = await fetch(`${url}/data`, { headers: { origin: 'https://one.example', prefer: 'respond-async' } })
  t.equal(accepted.headers.get('access-control-allow-origin'), 'https://one.example')
  const result = await fetch(url + (accepted.headers.get('location') ?? ''), { headers: { origin: 'https://two.example', prefer: 'wait=10' } })
  t.equal(result.status, 200)
  t.equal(result.headers.get('access-control-allow-origin'), 'https://two.example', 'decided for this request, not replayed')
  t.match(result.headers.get('vary') ?? '', /origin/i)
})

t.test('request.ip, protocol and hostname in a job are the ones the HTTP side saw (trustProxy)', async t => {
  const { url } = await serve(t, async (app) => {
    await app.register(longRunning, { waitSeconds: 5 })
    app.get('/where', { longRunning: true }, async (request) => ({ ip: request.ip, protocol: request.protocol, hostname: request.hostname, job: request.longRunning !== null }))
  }, { trustProxy: true })
  const response = await fetch(`${url}/where`, { headers: { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.example' } })
  t.same(await response.json(), { ip: '203.0.113.7', protocol: 'https', hostname: 'api.example', job: true })
})

t.test('AsyncLocalStorage and @fastify/request-context: a job runs in a context of its own on both backends; carry works on both', async t => {
  for (const [name, options] of await backends(t)) {
    const storage = new AsyncLocalStorage<string>()
    const { url } = await serve(t, async (app) => {
      await app.register(fastifyRequestContext)
      await app.register(longRunning, { waitSeconds: 10, carry: (request) => ({ carried: request.headers['x-caller'] ?? null }), ...options })
      app.addHook('onRequest', async (request) => {
        request.requestContext.set('caller', String(request.headers['x-caller']))
        if (request.longRunning === null) storage.enterWith('the HTTP request')
      })
      app.get('/context', { longRunning: true }, async (request) => ({
        leaked: storage.getStore() ?? null,
        caller: request.requestContext.get('caller'),
        carried: (request as unknown as { carried?: string }).carried
      }))
    })
    const response = await fetch(`${url}/context`, { headers: { 'x-caller': 'ann' } })
    t.equal(response.status, 200, name)
    t.same(await response.json(), { leaked: null, caller: 'ann', carried: 'ann' }, `${name}: nothing of the HTTP request's context, its own request context, the carried value`)
  }
})

t.test('app.close() on a queue shared with other processes: the job goes back at once and its client gets a 303', async t => {
  const [, [, options]] = await backends(t) as [unknown, [string, LongRunningOptions]]
  let started!: () => void
  const running = new Promise<void>(resolve => { started = resolve })
  const { app, url } = await serve(t, async (app) => {
    await app.register(longRunning, { waitSeconds: 600, ...options })
    app.get('/forever', { longRunning: true }, async (request) => {
      started()
      await new Promise(resolve => request.longRunning?.signal.addEventListener('abort', resolve))
      return 'stopped'
    })
  })
  const pending = fetch(`${url}/forever`, { redirect: 'manual' })
  await running
  const closed = app.close()
  const response = await pending
  t.equal(response.status, 303, 'the waiting client is told where to ask again, at once')
  await closed
  const id = (await response.json() as { id: string }).id
  const record = await options.store?.get(id)
  t.match(record, { status: 'running', attempt: 1 }, 'the job is still there for another worker')
  t.ok((record?.leaseUntil ?? Infinity) < Date.now(), 'its claim released: the next worker need not wait')
})
