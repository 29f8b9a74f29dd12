import { CreateQueueCommand, SendMessageCommand } from '@aws-sdk/client-sqs'
import { EventEmitter, once } from 'node:events'
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { emulatorClients, startEmulators } from '../../example/emulators.js'
import longRunning, { dynamoDbStore, sqsQueue } from '../../src/index.js'
import type { JsonValue } from '../../src/core/wire.js'
import { encodeMessage } from '../../src/job/message.js'
import { strictDynamoDb, strictSqs } from '../helpers/strict-aws.js'

// The queue is part of the trust boundary only as far as IAM keeps it (issue 26, point 1): a
// writer with sqs:SendMessage alone, who knows a job id (her own), sends messages of her own
// making. The worker claims a job only with the message its HTTP side accepted (its digest is
// in the job's record), so none of them runs anything, changes the job's time limits, or
// touches what the job's owner receives. On the SQS and DynamoDB emulators, over the real SDK.
const emulators = await startEmulators()
t.teardown(() => emulators.close())

interface User { name: string, admin: boolean }
declare module 'fastify' { interface FastifyRequest { caller: User | null } }

const USERS: Record<string, User> = { 'token-alice': { name: 'alice', admin: false }, 'token-root': { name: 'root', admin: true } }

/** The recommended auth setup: dropHeaders + carry + bindTo; an admin route that is not long-running. */
async function api (t: Test, queueUrl: string, consume: boolean, ran: Map<string, number>, lines: EventEmitter): Promise<FastifyInstance> {
  const { sqs, dynamodb } = emulatorClients(emulators.env, { maxAttempts: 1 })
  strictSqs(sqs)
  strictDynamoDb(dynamodb)
  const stream = new Writable({ write (chunk: Buffer, _encoding, done) { lines.emit('line', JSON.parse(chunk.toString())); done() } })
  const app = Fastify({ logger: { level: 'warn', stream } })
  t.teardown(async () => { await app.close(); sqs.destroy(); dynamodb.destroy() })
  app.decorateRequest('caller', null)
  app.addHook('onRequest', async (request, reply) => {
    if (request.longRunning !== null) return
    request.caller = USERS[String(request.headers.authorization).replace('Bearer ', '')] ?? null
    if (request.caller === null && request.url.startsWith('/a')) await reply.code(401).send()
  })
  await app.register(longRunning, {
    queue: sqsQueue({ queueUrl, client: sqs, receiveBatchSize: 1, retryDelaySeconds: 0 }),
    store: dynamoDbStore({ tableName: emulators.tableName, client: dynamodb }),
    consume,
    waitSeconds: 10,
    dropHeaders: ['authorization'],
    carry: request => ({ caller: request.caller as unknown as Record<string, string | boolean> }),
    bindTo: request => request.caller?.name
  })
  const count = (name: string): void => { ran.set(name, (ran.get(name) ?? 0) + 1) }
  app.get('/a/report', { longRunning: true }, async request => { count('report'); return { for: request.caller?.name, admin: request.caller?.admin } })
  app.get('/a/admin/secrets', async request => { count('secrets'); return request.caller?.admin === true ? { secret: 42 } : 'no' })
  app.get('/a/admin/export', { longRunning: true }, async request => { count('export'); return request.caller?.admin === true ? { exported: true } : 'no' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app
}

/** Resolves once `count` lines for which `match` holds have been logged. */
async function logged (lines: EventEmitter, match: (line: Record<string, unknown>) => boolean, count: number): Promise<void> {
  let seen = 0
  while (seen < count) {
    const [line] = await once(lines, 'line') as [Record<string, unknown>]
    if (match(line)) seen++
  }
}

t.test('forged messages for a pending job: none runs, none changes what its owner receives', async t => {
  const { QueueUrl: queueUrl } = await emulators.sqs.send(new CreateQueueCommand({ QueueName: 'forged' }))
  const ran = new Map<string, number>()
  const lines = new EventEmitter()
  const http = await api(t, queueUrl as string, false, ran, lines)
  const url = `http://127.0.0.1:${(http.server.address() as { port: number }).port}`
  const accepted = await fetch(`${url}/a/report`, { headers: { authorization: 'Bearer token-alice', prefer: 'respond-async' } })
  t.equal(accepted.status, 202)
  const { id } = await accepted.json() as { id: string }

  // Mallory, with sqs:SendMessage only, and her own job's id.
  const root = { name: 'root', admin: true }
  const request = (url: string, carried: Record<string, JsonValue> = { caller: root }) => ({ method: 'GET', url, headers: {}, carried })
  const base = { id, timeoutSeconds: 900, maxAttempts: 3, resultTtlSeconds: 3600 }
  const forged = [
    { ...base, request: request('/a/admin/secrets') }, // a route that is not long-running, as root
    { ...base, request: request('/a/admin/export') }, // another long-running route, as root
    { ...base, request: request('/a/report') }, // the same route, as root
    { ...base, request: request('/a/report', { caller: { name: 'alice', admin: false } }), timeoutSeconds: 1 }, // the same request, other limits
    { ...base, resultTtlSeconds: 366 * 86_400 } // no request: the one in the store, if any, kept longer
  ]
  for (const message of forged) await emulators.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: encodeMessage(message) }))
  await emulators.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: encodeMessage({ ...base, timeoutSeconds: 3e6 }) }))
  const dropped = logged(lines, line => line.msg === 'message does not match its job as accepted: dropped, the job is left as it is', forged.length)
  const invalid = logged(lines, line => line.msg === 'dropping invalid job message', 1)

  const worker = await api(t, queueUrl as string, true, ran, lines)
  t.ok(worker.server.listening)
  await Promise.all([dropped, invalid])
  const result = await fetch(url + (accepted.headers.get('location') ?? ''), { headers: { authorization: 'Bearer token-alice', prefer: 'wait=10' } })
  t.equal(result.status, 200)
  t.same(await result.json(), { for: 'alice', admin: false }, 'the owner gets her own route\'s answer, as herself')
  t.same(Object.fromEntries(ran), { report: 1 }, 'the genuine message ran the job once; no forged one ran anything')
})
