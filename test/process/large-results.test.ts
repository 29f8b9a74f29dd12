import { Readable } from 'node:stream'
import { CreateQueueCommand } from '@aws-sdk/client-sqs'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { emulatorClients, startEmulators } from '../../example/emulators.js'
import longRunning, { dynamoDbStore, s3Results, sqsQueue, type LongRunningOptions, type ResultBodies } from '../../src/index.js'
import { newJobId } from '../../src/core/job-id.js'
import { buildTestApp, closeTestApp } from '../helpers/app.js'
import { delivery, RecordingQueue } from '../helpers/recording-queue.js'
import { curl } from '../ecosystem/serve.js'
import { pattern } from '../helpers/pattern.js'
import { startS3 } from '../helpers/s3.js'
import { strictDynamoDb, strictS3, strictSqs } from '../helpers/strict-aws.js'

// Results larger than the store or the front end takes: the body goes to S3 (s3rver), and the
// client is redirected to a presigned URL of it, which curl -L and fetch follow.
const s3 = await startS3()
t.teardown(() => s3.close())
strictS3(s3.client)
const emulators = await startEmulators()
t.teardown(() => emulators.close())

const bytes = (size: number): Buffer => pattern(size)

async function serve (t: Test, options: LongRunningOptions): Promise<string> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(longRunning, { waitSeconds: 10, results: s3Results({ bucket: s3.bucket, client: s3.client, thresholdBytes: 1024 * 1024, partBytes: 5 * 1024 * 1024 }), ...options })
  app.get<{ Querystring: { size: string } }>('/export', { longRunning: true }, async (request, reply) => {
    return await reply.code(201).type('text/csv').header('content-disposition', 'attachment; filename="export.csv"').header('x-rows', '7')
      .send(bytes(Number(request.query.size)))
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
}

async function check (t: Test, url: string): Promise<void> {
  const size = 12 * 1024 * 1024 + 3
  const followed = await curl(['-L', `${url}/export?size=${size}`])
  t.equal(followed.status, 200, 'the last hop is S3\'s 200')
  t.ok(followed.bytes.equals(bytes(size)), 'curl -L: byte for byte')
  t.match(followed.headers, /content-disposition: attachment; filename="export.csv"/i)

  const first = await fetch(`${url}/export?size=${size}`, { redirect: 'manual' })
  t.equal(first.status, 303)
  t.equal(first.headers.get('x-long-running-status'), '201', 'the route\'s status, which S3 cannot carry')
  t.equal(first.headers.get('cache-control'), 'no-store')
  t.equal(first.headers.get('referrer-policy'), 'no-referrer')
  const location = first.headers.get('location') ?? ''
  t.match(location, new RegExp(`^${s3.endpoint}/${s3.bucket}/results/[0-9a-f-]{36}/`))
  t.match(await first.json(), { status: 'done', statusCode: 201, location })
  const body = await fetch(location)
  t.ok(Buffer.from(await body.arrayBuffer()).equals(bytes(size)), 'fetch: byte for byte')

  const small = await fetch(`${url}/export?size=1000`)
  t.equal(small.status, 201, 'under the threshold: the route\'s own answer, as before')
  t.equal(small.headers.get('x-rows'), '7')
}

t.test('embedded default', async t => {
  await check(t, await serve(t, {}))
})

t.test('SQS and DynamoDB emulators, through the strict-AWS layer', async t => {
  const { sqs, dynamodb } = emulatorClients(emulators.env)
  t.teardown(() => { sqs.destroy(); dynamodb.destroy() })
  strictSqs(sqs)
  strictDynamoDb(dynamodb)
  const { QueueUrl } = await emulators.sqs.send(new CreateQueueCommand({ QueueName: 'large-results' }))
  await check(t, await serve(t, {
    queue: sqsQueue({ queueUrl: QueueUrl as string, client: sqs, receiveBatchSize: 1 }),
    store: dynamoDbStore({ tableName: emulators.tableName, client: dynamodb }),
    consume: true
  }))
})

t.test('a job bound to another caller: the same 404, never a URL', async t => {
  const url = await serve(t, { bindTo: request => request.headers['x-user'] as string | undefined })
  const accepted = await fetch(`${url}/export?size=${2 * 1024 * 1024}`, { headers: { 'x-user': 'alice', prefer: 'respond-async' } })
  const location = accepted.headers.get('location') ?? ''
  const mine = await fetch(`${url}${location}`, { headers: { 'x-user': 'alice' }, redirect: 'manual' })
  t.equal(mine.status, 303)
  const theirs = await fetch(`${url}${location}`, { headers: { 'x-user': 'mallory' }, redirect: 'manual' })
  t.equal(theirs.status, 404)
  t.equal(theirs.headers.get('location'), null)
  t.notMatch(await theirs.text(), /X-Amz/)
})

t.test('a failed upload is a failed attempt: the claim goes back and the next delivery stores the body', async t => {
  const queue = new RecordingQueue()
  const real = s3Results({ bucket: s3.bucket, client: s3.client })
  let failures = 1
  const results: ResultBodies = {
    thresholdBytes: 10,
    put: async (...args) => {
      if (failures-- > 0) throw new Error('S3 down')
      return await real.put(...args)
    },
    url: async (body, method) => await real.url(body, method),
    delete: async (id) => await real.delete(id)
  }
  const test = await buildTestApp({ queue, results, waitSeconds: 0 })
  t.teardown(() => closeTestApp(test))
  const accepted = await test.app.inject({ url: '/job/big?open=1', method: 'POST', payload: 'x'.repeat(100), headers: { 'content-type': 'text/plain', prefer: 'respond-async' } })
  const message = queue.sent[0] as string
  const first = await test.app.longRunning.handle(delivery(message))
  t.match(first, { ack: false }, 'handed back')
  t.same(await test.app.longRunning.handle(delivery(message, 2)), { ack: true })
  t.equal(test.runs.get('big'), 2, 'the handler ran again: its body was never stored')
  const answer = await test.app.inject(accepted.headers.location as string)
  t.equal(answer.statusCode, 303)
  t.equal(await (await fetch(answer.headers.location as string)).text(), 'x'.repeat(100))
})

t.test('an app without `results` cannot hand over a body stored outside: a clear 500; a cancel removes the bodies', async t => {
  const test = await buildTestApp({ waitSeconds: 0 })
  t.teardown(() => closeTestApp(test))
  const { store } = test.app.longRunning
  const id = newJobId()
  await store.create({ id, waitSeconds: 0, createdAt: Date.now(), expiresAt: Date.now() + 60_000 })
  await store.claim(id, { owner: 'w', leaseUntil: Date.now() + 60_000, now: Date.now() })
  await store.complete(id, 'w', { statusCode: 200, headers: {}, body: Buffer.alloc(0), external: { key: 'results/x/w', bytes: 5 } }, Date.now() + 60_000)
  const answer = await test.app.inject(`/async-response/${id}`)
  t.equal(answer.statusCode, 500)
  t.equal(answer.json().code, 'FST_LONG_RUNNING_RESULTS_UNAVAILABLE')

  const deleted: string[] = []
  const withResults = await buildTestApp({ waitSeconds: 0, results: { thresholdBytes: 10, put: async () => ({ key: 'k', bytes: 1 }), url: async () => 'http://127.0.0.1:9/', delete: async (id) => { deleted.push(id); throw new Error('S3 down') } } })
  t.teardown(() => closeTestApp(withResults))
  const job = await withResults.app.inject({ url: '/job/cancelled', headers: { prefer: 'respond-async' } })
  const cancelled = await withResults.app.inject({ method: 'DELETE', url: job.headers.location as string })
  t.equal(cancelled.statusCode, 204, 'cancelled, though removing its bodies failed (the lifecycle rule will)')
  t.equal(deleted.length, 1)
})

t.test('the body the route sent is the one stored: held once, never copied on the way', async t => {
  const real = s3Results({ bucket: s3.bucket, client: s3.client, partBytes: 5 * 1024 * 1024 })
  const put: Array<readonly Buffer[]> = []
  const results: ResultBodies = {
    thresholdBytes: 10,
    put: async (id, owner, body, headers) => {
      put.push(Buffer.isBuffer(body) ? [body] : body)
      return await real.put(id, owner, body, headers)
    },
    url: async (body, method) => await real.url(body, method),
    delete: async (id) => await real.delete(id)
  }
  const app = Fastify()
  t.teardown(() => app.close())
  const sent: Buffer[] = []
  // Before the plugin: a hook that answers a job run itself, before the plugin's hook could sink its body.
  app.addHook('onRequest', async (request, reply) => {
    if (request.headers['x-refuse'] !== undefined && request.longRunning != null) await reply.code(429).send('slow down')
  })
  await app.register(longRunning, { waitSeconds: 10, results })
  app.get('/buffer', { longRunning: true }, async (_request, reply) => {
    sent.push(bytes(11 * 1024 * 1024))
    return await reply.type('application/octet-stream').send(sent.at(-1))
  })
  app.get('/text', { longRunning: true }, async () => 'é'.repeat(20))
  // A streaming route: its chunks go to S3 as they are, never joined into one copy.
  app.get('/stream', { longRunning: true }, async (_request, reply) => {
    const chunks = Array.from({ length: 120 }, (_, i) => bytes(100_000 + i))
    sent.push(...chunks)
    return await reply.type('text/csv').send(Readable.from(chunks))
  })
  await app.ready()

  const first = await app.inject('/buffer')
  t.equal(first.statusCode, 303)
  t.equal(put.length, 1)
  t.equal(put[0]?.length, 1)
  t.equal(put[0]?.[0]?.buffer, sent[0]?.buffer, 'the route\'s own memory, not a copy')
  t.ok((await fetch(first.headers.location as string).then(async response => Buffer.from(await response.arrayBuffer()))).equals(bytes(11 * 1024 * 1024)))

  const streamed = await app.inject('/stream')
  t.equal(streamed.statusCode, 303)
  t.equal(put[1]?.length, 120, 'the route\'s chunks, not joined')
  t.ok(put[1]?.every((chunk, i) => chunk.buffer === sent[i + 1]?.buffer), 'each of them the route\'s own memory')
  t.ok(Buffer.from(await (await fetch(streamed.headers.location as string)).arrayBuffer()).equals(Buffer.concat(sent.slice(1))), 'byte for byte through S3')

  const text = await app.inject('/text')
  t.equal(text.statusCode, 303, 'a string body, encoded as the route wrote it')
  t.equal(await (await fetch(text.headers.location as string)).text(), 'é'.repeat(20))

  const refused = await app.inject({ url: '/text', headers: { 'x-refuse': '1' } })
  t.equal(refused.statusCode, 429, 'answered by a hook before the plugin\'s (under the threshold: from the store)')
  t.equal(refused.body, 'slow down', 'its body arrives all the same')
})

t.test('HEAD on a result in S3: a 303 to a URL signed for HEAD, which S3 answers 200 with the body\'s length; GET still gets the body', async t => {
  const url = await serve(t, {})
  const size = 2 * 1024 * 1024 + 5
  const accepted = await fetch(`${url}/export?size=${size}`, { headers: { prefer: 'respond-async' } })
  const location = `${url}${accepted.headers.get('location') ?? ''}`
  const head = await fetch(location, { method: 'HEAD', redirect: 'manual' })
  t.equal(head.status, 303)
  t.equal(head.headers.get('x-long-running-status'), '201')
  const signed = head.headers.get('location') ?? ''
  t.equal((await fetch(signed, { method: 'GET' })).status, 403, 'signed for HEAD: S3 (here the strict layer) refuses it for GET')
  const followed = await fetch(location, { method: 'HEAD' })
  t.equal(followed.status, 200, 'HEAD follows the 303 to S3\'s 200')
  t.equal(followed.headers.get('content-length'), String(size))
  t.equal(followed.headers.get('content-type'), 'text/csv')
  const got = await fetch(location)
  t.equal(got.status, 200)
  t.ok(Buffer.from(await got.arrayBuffer()).equals(bytes(size)), 'GET: byte for byte')
  const direct = await fetch(`${url}/export?size=${size}`, { method: 'HEAD' })
  t.equal(direct.status, 200, 'a HEAD of the route itself, once its job is done, ends at S3 too')
  t.equal(direct.headers.get('content-length'), String(size))
})
