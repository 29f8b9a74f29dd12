import { CreateQueueCommand } from '@aws-sdk/client-sqs'
import { createHash, randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import compress from '@fastify/compress'
import cors from '@fastify/cors'
import jwt from '@fastify/jwt'
import multipart from '@fastify/multipart'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod'
import t, { type Test } from 'tap'
import { emulatorClients, startEmulators } from '../../example/emulators.js'
import { z } from 'zod'
import { fetchLongRunning, type LongRunningProgress } from '../../src/client/index.js'
import longRunning, { dynamoDbStore, memoryStore, sqsQueue, type LongRunningOptions } from '../../src/index.js'
import { decodeMessage } from '../../src/job/message.js'
import { addMiddleware } from '../helpers/faults.js'
import { serve } from './serve.js'

// The typed client and the memory budget inside an app built the way real ones are: CORS,
// compression, a rate limit that counts the client's polling, multipart uploads, JWT auth in a
// child plugin with bindTo, zod schemas, and the embedded default with a 4 MiB budget; then the
// same app on the SQS and DynamoDB emulators as a container that runs the jobs it accepts.

const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')
const ORIGIN = 'https://app.example'

async function api (t: Test, backend: LongRunningOptions = { store: memoryStore({ maxBytes: 4 * 1024 * 1024 }) }): Promise<{ app: FastifyInstance, url: string, limited: () => number }> {
  let limited = 0
  const { app, url } = await serve(t, async (app) => {
    app.setValidatorCompiler(validatorCompiler)
    app.setSerializerCompiler(serializerCompiler)
    app.addHook('onResponse', async (_request, reply) => { if (reply.statusCode === 429) limited++ })
    await app.register(cors, { origin: true, methods: ['GET', 'POST', 'DELETE'], exposedHeaders: ['location', 'retry-after', 'preference-applied'] })
    await app.register(compress, { threshold: 1024 })
    await app.register(rateLimit, {
      // Two requests per 3 s: a client asking for its job's status every second meets it.
      max: 2,
      timeWindow: 3000,
      keyGenerator: (request) => String(request.headers.authorization ?? request.ip),
      // A job run was counted when its request came in.
      allowList: (request) => request.longRunning !== null
    })
    await app.register(multipart, { limits: { fileSize: 8 * 1024 * 1024 } })
    await app.register(jwt, { secret: 'a-secret-of-at-least-32-characters!!' })
    const bindTo = async (request: FastifyRequest): Promise<string | undefined> => await request.jwtVerify<{ sub: string }>().then(({ sub }) => sub, () => undefined)
    await app.register(longRunning, { bindTo, ...backend })
    await app.register(async (secured) => {
      secured.addHook('onRequest', async (request) => { if (request.longRunning === null) await request.jwtVerify() })
      secured.withTypeProvider<ZodTypeProvider>().get('/reports/:n', {
        longRunning: true,
        schema: { params: z.object({ n: z.coerce.number().int() }), querystring: z.object({ ms: z.coerce.number().int().default(0) }) }
      }, async (request) => {
        const job = request.longRunning
        for (let step = 1; step <= 4; step++) {
          await sleep(request.query.ms / 4, undefined, { signal: job?.signal })
          job?.progress(step / 4, `step ${step}`)
        }
        // Large enough to be compressed.
        return { n: request.params.n, rows: Array.from({ length: 200 }, (_, i) => ({ i, text: `row ${i} of report ${request.params.n}` })) }
      })
      secured.post('/uploads', { longRunning: true, bodyLimit: 8 * 1024 * 1024 }, async (request, reply) => {
        const files: Array<{ name: string, sha: string }> = []
        for await (const part of request.parts()) {
          if (part.type === 'file') files.push({ name: part.filename, sha: sha(await part.toBuffer()) })
        }
        return await reply.code(201).send({ files })
      })
    })
  })
  return { app, url, limited: () => limited }
}

t.test('fetchLongRunning in a real app: auth, zod, CORS, compression, and a rate limit on its polling', async t => {
  const { app, url, limited } = await api(t)
  const auth = (sub: string): Record<string, string> => ({ authorization: `Bearer ${app.jwt.sign({ sub })}`, origin: ORIGIN })
  const progress: LongRunningProgress[] = []
  const response = await fetchLongRunning(`${url}/reports/7?ms=6000`, { headers: auth('ann') }, { onProgress: status => progress.push(status) })
  t.equal(response.status, 200)
  t.equal(response.headers.get('content-encoding'), 'gzip', 'compressed for this request')
  t.equal(response.headers.get('access-control-allow-origin'), ORIGIN)
  t.match(await response.json(), { n: 7, rows: { length: 200 } })
  t.ok(limited() > 0, `the polling met the rate limit (${limited()} × 429) and went on after its Retry-After`)
  const fractions = progress.flatMap(status => status.fraction ?? [])
  t.ok(fractions.length >= 2, `progress reported (${fractions.join(', ')})`)
  t.same(fractions, [...fractions].sort((a, b) => a - b), 'never falling')

  const location = progress[0]?.location ?? ''
  t.equal((await fetch(location, { headers: auth('bob') })).status, 404, 'another user: the job does not exist')
  t.equal((await fetch(location, { headers: auth('ann') })).status, 200, 'its owner reads it again')

  const invalid = await fetchLongRunning(`${url}/reports/seven`, { headers: auth('ann') })
  t.equal(invalid.status, 400, 'zod answers at once, nothing queued')
  t.equal((await fetchLongRunning(`${url}/reports/7`)).status, 401, 'no token: 401 at once')
  t.equal(app.longRunning.stats().storedJobs, 1, 'only the one job was ever stored')
})

t.test('fetchLongRunning uploads through multipart; over the memory budget it gets 503 and nothing is stored', async t => {
  const { app, url } = await api(t)
  const token = (sub: string): Record<string, string> => ({ authorization: `Bearer ${app.jwt.sign({ sub })}` })
  const file = randomBytes(1024 * 1024)
  const form = new FormData()
  form.append('doc', new Blob([file]), 'doc.bin')
  const uploaded = await fetchLongRunning(`${url}/uploads`, { method: 'POST', body: form, headers: token('ann') })
  t.equal(uploaded.status, 201)
  t.same(await uploaded.json(), { files: [{ name: 'doc.bin', sha: sha(file) }] })

  const before = app.longRunning.stats()
  const big = new FormData()
  big.append('doc', new Blob([randomBytes(3 * 1024 * 1024)]), 'big.bin')
  // Another user: the rate limit's budget is per token.
  const refused = await fetchLongRunning(`${url}/uploads`, { method: 'POST', body: big, headers: token('bob') }, { retries: 1 })
  t.equal(refused.status, 503, 'retried once with its key, then the 503 is the answer')
  t.equal(refused.headers.get('retry-after'), '1')
  t.match(await refused.json(), { code: 'FST_LONG_RUNNING_ENQUEUE_FAILED' })
  t.same(app.longRunning.stats(), before, 'nothing queued, nothing stored')
})

t.test('the same app on SQS and DynamoDB, a container running the jobs it accepts: the same answers', async t => {
  const emulators = await startEmulators()
  t.teardown(async () => await emulators.close())
  const { sqs, dynamodb } = emulatorClients(emulators.env)
  t.teardown(() => { sqs.destroy(); dynamodb.destroy() })
  const backups: number[] = []
  addMiddleware(sqs, (next, context) => async (args) => {
    if (context.commandName === 'SendMessageCommand' && decodeMessage(args.input.MessageBody).backup === true) backups.push(args.input.DelaySeconds)
    return await next(args)
  })
  const { QueueUrl: queueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'ecosystem-client' }))
  const { app, url, limited } = await api(t, {
    queue: sqsQueue({ queueUrl: queueUrl as string, client: sqs, receiveBatchSize: 1 }),
    store: dynamoDbStore({ tableName: emulators.tableName, client: dynamodb }),
    consume: true,
    pollIntervalMs: 20
  })
  const auth = (sub: string): Record<string, string> => ({ authorization: `Bearer ${app.jwt.sign({ sub })}`, origin: ORIGIN })
  const progress: LongRunningProgress[] = []
  const response = await fetchLongRunning(`${url}/reports/8?ms=4000`, { headers: auth('ann') }, { onProgress: status => progress.push(status) })
  t.equal(response.status, 200)
  t.equal(response.headers.get('content-encoding'), 'gzip')
  t.equal(response.headers.get('access-control-allow-origin'), ORIGIN)
  t.match(await response.json(), { n: 8, rows: { length: 200 } })
  t.ok(limited() > 0, `the polling met the rate limit (${limited()} × 429) and went on`)
  t.ok(progress.some(status => status.fraction !== undefined), 'progress reached the client through the table')
  const location = progress[0]?.location ?? ''
  t.equal((await fetch(location, { headers: auth('bob') })).status, 404, 'another user: the job does not exist')

  const file = randomBytes(1024 * 1024)
  const form = new FormData()
  form.append('doc', new Blob([file]), 'doc.bin')
  const uploaded = await fetchLongRunning(`${url}/uploads`, { method: 'POST', body: form, headers: { authorization: auth('cid').authorization as string } })
  t.equal(uploaded.status, 201)
  t.same(await uploaded.json(), { files: [{ name: 'doc.bin', sha: sha(file) }] })
  t.equal((await fetchLongRunning(`${url}/reports/eight`, { headers: auth('ann') })).status, 400, 'zod answers at once')
  // The report ran where it was accepted (its message a backup, delayed by the lease); the
  // upload carries the client's Idempotency-Key, so it took the queue.
  t.same(backups, [30], 'one backup: the report\'s')
})
