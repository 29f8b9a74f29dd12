import { createHash, randomBytes } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import http2 from 'node:http2'
import { DeleteObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import multipart from '@fastify/multipart'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import t from 'tap'
import { emulatorClients, startEmulators } from '../../example/emulators.js'
import longRunning, { dynamoDbStore, memoryQueue, memoryStore, s3Results, sqsQueue, type JobEndEvent } from '../../src/index.js'
import { addMiddleware, injectFaults } from '../helpers/faults.js'
import { startS3 } from '../helpers/s3.js'
import { strictDynamoDb, strictS3, strictSqs } from '../helpers/strict-aws.js'
import { serve } from './serve.js'

// Issue 29: request bodies past the bucket's threshold stream to S3 as they arrive and back
// to the job's replay, on the s3rver emulator behind the strict layer (S3's part sizes).
// Hundreds of MiB pass through the emulator, written to disk: more than tap's 120 s per file on
// two busy cores.
t.setTimeout(300_000)
const s3 = await startS3('uploads')
t.teardown(() => s3.close())
strictS3(s3.client)
const commands: string[] = []
// s3rver implements neither ListMultipartUploads nor AbortMultipartUpload (MethodNotAllowed):
// uploads are counted here, an abort as sent (S3 removes the parts of an aborted upload).
const openUploads = new Set<string>()
addMiddleware(s3.client, (next, context) => async (args) => {
  commands.push(context.commandName)
  if (context.commandName === 'AbortMultipartUploadCommand') openUploads.delete(args.input.UploadId)
  const result = await next(args) as { output: { UploadId?: string } }
  if (context.commandName === 'CreateMultipartUploadCommand') openUploads.add(result.output.UploadId as string)
  if (context.commandName === 'CompleteMultipartUploadCommand') openUploads.delete(args.input.UploadId)
  return result
})

const MiB = 1024 * 1024
const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')
const bucket = (): ReturnType<typeof s3Results> => s3Results({ bucket: s3.bucket, client: s3.client, partBytes: 5 * MiB })

/** The objects and the unfinished multipart uploads in the bucket. */
async function leftInBucket (): Promise<{ objects: string[], uploads: number }> {
  const { Contents = [] } = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket }))
  return { objects: Contents.map(({ Key }) => Key as string), uploads: openUploads.size }
}

/**
 * Counts the jobs that ended, through `onJobEnd`: a job's upload is removed before it hears of
 * the end, while the client may have its answer a moment sooner (a waiter is told at once).
 */
function jobEnds (): { onJobEnd: () => void, ended: (count: number) => Promise<void> } {
  let seen = 0
  const waiting = new Set<{ count: number, resolve: () => void }>()
  return {
    onJobEnd: () => {
      seen += 1
      for (const waiter of waiting) if (seen >= waiter.count) { waiting.delete(waiter); waiter.resolve() }
    },
    ended: async (count) => { if (seen < count) await new Promise<void>(resolve => waiting.add({ count, resolve })) }
  }
}

/** Every file part hashed as it streams, and the fields; `toBuffer()` for the limits' errors. */
async function readParts (request: FastifyRequest): Promise<unknown> {
  const files: Array<{ field: string, bytes: number, sha: string }> = []
  const fields: Record<string, unknown> = {}
  for await (const part of request.parts()) {
    if (part.type === 'field') fields[part.fieldname] = part.value
    else {
      const data = await part.toBuffer()
      files.push({ field: part.fieldname, bytes: data.length, sha: sha(data) })
    }
  }
  return { files, fields }
}

const form = (files: Array<Buffer<ArrayBuffer>>, note = 'hello'): FormData => {
  const data = new FormData()
  data.append('note', note)
  files.forEach((file, i) => data.append(`doc${i}`, new Blob([file]), `doc${i}.bin`))
  return data
}

t.test('a multipart upload over the threshold streams to the bucket in parts, reaches request.parts() whole, and is gone once its job ends', async t => {
  const ends = jobEnds()
  let executions = 0
  const { url } = await serve(t, async (app) => {
    await app.register(multipart, { limits: { fileSize: 64 * MiB } })
    await app.register(longRunning, { onJobEnd: ends.onJobEnd, waitSeconds: 20, results: bucket() })
    app.post('/upload', { longRunning: true }, async (request) => {
      executions += 1
      return await readParts(request)
    })
  })
  commands.length = 0
  const file = randomBytes(12 * MiB + 12345)
  const response = await fetch(`${url}/upload`, { method: 'POST', body: form([file]) })
  t.equal(response.status, 200, 'over the route\'s default bodyLimit of 1 MiB: multipart\'s fileSize decides')
  t.same(await response.json(), { files: [{ field: 'doc0', bytes: file.length, sha: sha(file) }], fields: { note: 'hello' } })
  t.equal(executions, 1)
  t.ok(commands.filter(name => name === 'UploadPartCommand').length >= 3, 'sent in parts as it arrived')
  t.ok(commands.includes('GetObjectCommand'), 'the replay streamed it back')
  await ends.ended(1)
  t.same(await leftInBucket(), { objects: [], uploads: 0 }, 'the job ended: its upload is gone')
})

t.test('a body under the threshold stays in the job as before; raw streams and parsed bodies over it work as they would synchronously', async t => {
  const ends = jobEnds()
  const { url } = await serve(t, async (app) => {
    await app.register(longRunning, { onJobEnd: ends.onJobEnd, waitSeconds: 20, results: bucket() })
    app.post('/json', { longRunning: true, bodyLimit: 8 * MiB }, async (request) => {
      const { items } = request.body as { items: string[] }
      return { count: items.length, first: items[0] }
    })
    await app.register(async (raw) => {
      raw.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload))
      raw.post('/raw', { longRunning: true, bodyLimit: 64 * MiB }, async (request) => {
        const hash = createHash('sha256')
        let bytes = 0
        for await (const chunk of request.body as AsyncIterable<Buffer>) {
          hash.update(chunk)
          bytes += chunk.length
        }
        return { bytes, sha: hash.digest('hex') }
      })
    })
  })
  commands.length = 0
  const small = await fetch(`${url}/json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ items: ['a'] }) })
  t.same(await small.json(), { count: 1, first: 'a' })
  t.notOk(commands.some(name => /Upload|PutObject/.test(name)), 'a small body never reaches the bucket')
  const items = Array.from({ length: 100_000 }, (_, i) => `item-${i}-${'x'.repeat(20)}`)
  const large = await fetch(`${url}/json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ items }) })
  t.same(await large.json(), { count: 100_000, first: items[0] })
  const bytes = randomBytes(20 * MiB + 1)
  const raw = await fetch(`${url}/raw`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytes })
  t.same(await raw.json(), { bytes: bytes.length, sha: sha(bytes) })
  await ends.ended(3)
  t.same(await leftInBucket(), { objects: [], uploads: 0 })
})

t.test('the synchronous twin of a multipart route and its long-running version accept and refuse the same uploads', async t => {
  const ends = jobEnds()
  const { url } = await serve(t, async (app: FastifyInstance) => {
    await app.register(multipart, { limits: { fileSize: 3 * MiB, files: 2, fields: 2 } })
    await app.register(longRunning, { onJobEnd: ends.onJobEnd, waitSeconds: 20, results: bucket() })
    app.post('/sync', readParts)
    app.post('/job', { longRunning: true }, readParts)
  })
  const cases: Array<[string, () => FormData]> = [
    ['a file within fileSize', () => form([randomBytes(2 * MiB)])],
    ['two files within fileSize, 4 MiB in all', () => form([randomBytes(2 * MiB), randomBytes(2 * MiB)])],
    ['a file over fileSize', () => form([randomBytes(5 * MiB)])],
    ['three files: over files', () => form([randomBytes(MiB), randomBytes(MiB), randomBytes(MiB)])]
  ]
  for (const [name, make] of cases) {
    const body = make()
    const sync = await fetch(`${url}/sync`, { method: 'POST', body })
    const job = await fetch(`${url}/job`, { method: 'POST', body })
    t.equal(job.status, sync.status, `${name}: ${sync.status}`)
    t.same(await job.json(), await sync.json(), `${name}: the same body`)
  }
  await ends.ended(4)
  t.same(await leftInBucket(), { objects: [], uploads: 0 })
})

t.test('the embedded default\'s budget counts an upload\'s parts in flight, not the body sent on', async t => {
  const store = memoryStore({ maxBytes: 48 * MiB })
  const { app, url } = await serve(t, async (app) => {
    await app.register(multipart, { limits: { fileSize: 256 * MiB } })
    await app.register(longRunning, { store, waitSeconds: 20, results: bucket() })
    app.post('/upload', { longRunning: true }, readParts)
  })
  const file = randomBytes(80 * MiB)
  const response = await fetch(`${url}/upload`, { method: 'POST', body: form([file]) })
  t.equal(response.status, 200, 'an 80 MiB upload through a 48 MiB budget')
  t.same(await response.json(), { files: [{ field: 'doc0', bytes: file.length, sha: sha(file) }], fields: { note: 'hello' } })
  t.ok((app.longRunning.stats().storedBytes ?? Infinity) < MiB, 'the store holds the request\'s head, not its body')
})

t.test('the embedded default\'s budget: an upload whose parts in flight could not fit is refused before a byte is stored', async t => {
  commands.length = 0
  const { url } = await serve(t, async (app) => {
    await app.register(multipart, { limits: { fileSize: 256 * MiB } })
    // The threshold (1 MiB) and two 5 MiB parts, counted twice as every body is: 22 MiB.
    await app.register(longRunning, { store: memoryStore({ maxBytes: 16 * MiB }), waitSeconds: 20, results: bucket() })
    app.post('/upload', { longRunning: true }, readParts)
  })
  const response = await fetch(`${url}/upload`, { method: 'POST', body: form([randomBytes(40 * MiB)]) })
  t.equal(response.status, 503)
  t.equal(response.headers.get('retry-after'), '1')
  t.notOk(commands.some(name => /Upload|PutObject/.test(name)), 'nothing sent to the bucket')
})

t.test('idempotency: the key\'s fingerprint covers an uploaded body; a retry attaches, another body is 422, and neither leaves an object', async t => {
  const ends = jobEnds()
  let executions = 0
  const { url } = await serve(t, async (app) => {
    await app.register(longRunning, { onJobEnd: ends.onJobEnd, waitSeconds: 20, results: bucket() })
    app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: 64 * MiB }, (_request, body, done) => done(null, body))
    app.post('/put', { longRunning: true, bodyLimit: 64 * MiB }, async (request) => {
      executions += 1
      return { sha: sha(request.body as Buffer) }
    })
  })
  const body = randomBytes(7 * MiB)
  const send = async (bytes: Buffer<ArrayBuffer>): Promise<Response> => await fetch(`${url}/put`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'idempotency-key': 'k-29' }, body: bytes })
  const first = await send(body)
  t.same(await first.json(), { sha: sha(body) })
  const again = await send(body)
  t.equal(again.headers.get('idempotent-replayed'), 'true')
  t.same(await again.json(), { sha: sha(body) })
  const other = randomBytes(body.length)
  body.copy(other)
  other[other.length - 1] = (body[body.length - 1] ?? 0) ^ 1
  t.equal((await send(other)).status, 422, 'one byte differs at the end: another request')
  t.equal(executions, 1)
  await ends.ended(1)
  t.same(await leftInBucket(), { objects: [], uploads: 0 })
})

t.test('a part S3 refuses: 503 with Retry-After, no job, nothing half-stored', async t => {
  let executions = 0
  const { url } = await serve(t, async (app) => {
    await app.register(multipart, { limits: { fileSize: 64 * MiB } })
    await app.register(longRunning, { waitSeconds: 20, results: bucket() })
    app.post('/upload', { longRunning: true }, async (request) => {
      executions += 1
      return await readParts(request)
    })
  })
  const faults = injectFaults(s3.client, [{ command: 'UploadPartCommand', times: 3 }])
  const response = await fetch(`${url}/upload`, { method: 'POST', body: form([randomBytes(12 * MiB)]) })
  t.equal(response.status, 503)
  t.equal(response.headers.get('retry-after'), '1')
  t.match(await response.json(), { code: 'FST_LONG_RUNNING_ENQUEUE_FAILED' })
  t.equal(faults.injected.get('UploadPartCommand'), 3, 'tried three times')
  t.equal(executions, 0)
  t.same(await leftInBucket(), { objects: [], uploads: 0 })
})

/**
 * Sends the head and `bytes` of a body declared larger; then stalls and resolves with the
 * answer's status, or (`wait`) resolves at once with a function that cuts the connection.
 */
async function partialUpload (url: string, bytes: number, then: 'stall' | 'wait'): Promise<number | undefined | (() => void)> {
  return await new Promise((resolve, reject) => {
    const request = httpRequest(`${url}/raw`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes * 4) } })
    request.on('response', response => { response.resume(); resolve(response.statusCode) })
    request.on('error', error => { if (then === 'stall') reject(error) })
    request.write(randomBytes(bytes))
    if (then === 'wait') resolve(() => request.destroy())
  })
}

t.test('an upload stalled past bodyTimeoutSeconds (408), or cut by its client: its multipart upload is aborted, no job', async t => {
  let executions = 0
  const seen = new Map<string, () => void>()
  const next = async (command: string): Promise<void> => await new Promise(resolve => seen.set(command, resolve))
  addMiddleware(s3.client, (next, context) => async (args) => {
    // After the call, whatever its answer (s3rver refuses aborts).
    try {
      return await next(args)
    } finally {
      seen.get(context.commandName)?.()
    }
  })
  const { url } = await serve(t, async (app) => {
    await app.register(longRunning, { waitSeconds: 20, results: bucket(), bodyTimeoutSeconds: 2 })
    app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload))
    app.post('/raw', { longRunning: true, bodyLimit: 256 * MiB }, async () => { executions += 1 })
  })
  let aborted = next('AbortMultipartUploadCommand')
  t.equal(await partialUpload(url, 12 * MiB, 'stall'), 408)
  await aborted
  t.same(await leftInBucket(), { objects: [], uploads: 0 }, 'stalled: aborted')

  const created = next('CreateMultipartUploadCommand')
  aborted = next('AbortMultipartUploadCommand')
  const cut = partialUpload(url, 12 * MiB, 'wait')
  await created
  ;(await cut as () => void)()
  await aborted
  t.same(await leftInBucket(), { objects: [], uploads: 0 }, 'cut: aborted')
  t.equal(executions, 0)
})

t.test('bindTo: a job with an uploaded body is its caller\'s alone; cancelling it removes the upload', async t => {
  const ends = jobEnds()
  let release: () => void = () => {}
  const released = new Promise<void>(resolve => { release = resolve })
  const { url } = await serve(t, async (app) => {
    await app.register(longRunning, { onJobEnd: ends.onJobEnd, waitSeconds: 20, results: bucket(), bindTo: request => request.headers['x-user'] as string | undefined })
    app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload))
    app.post('/raw', { longRunning: true, bodyLimit: 64 * MiB }, async (request) => {
      let bytes = 0
      for await (const chunk of request.body as AsyncIterable<Buffer>) bytes += (chunk as Buffer).length
      await Promise.race([released, new Promise(resolve => request.longRunning?.signal.addEventListener('abort', resolve))])
      return { bytes }
    })
  })
  const send = async (user: string): Promise<Response> => await fetch(`${url}/raw`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'x-user': user, prefer: 'respond-async' },
    body: randomBytes(6 * MiB)
  })
  const alice = await send('alice')
  t.equal(alice.status, 202)
  const location = url + (alice.headers.get('location') ?? '')
  t.equal((await fetch(location, { headers: { 'x-user': 'bob', prefer: 'respond-async' } })).status, 404, 'another caller: the same 404 as an unknown id')
  t.equal((await fetch(location, { method: 'DELETE', headers: { 'x-user': 'bob' } })).status, 404, 'nor may another caller cancel it')
  t.equal((await fetch(location, { method: 'DELETE', headers: { 'x-user': 'alice' } })).status, 204)
  t.same(await leftInBucket(), { objects: [], uploads: 0 }, 'cancelled: its upload is gone')
  release()

  const again = await send('alice')
  release()
  const done = await fetch(url + (again.headers.get('location') ?? ''), { headers: { 'x-user': 'alice' } })
  t.same(await done.json(), { bytes: 6 * MiB })
  await ends.ended(1)
  t.same(await leftInBucket(), { objects: [], uploads: 0 })
})

t.test('on SQS and DynamoDB the same bucket takes the upload: the message and the job item name it, the worker streams it back', async t => {
  const ends = jobEnds()
  const emulators = await startEmulators()
  t.teardown(() => emulators.close())
  const { sqs, dynamodb } = emulatorClients(emulators.env)
  strictSqs(sqs)
  strictDynamoDb(dynamodb)
  t.teardown(() => { sqs.destroy(); dynamodb.destroy() })
  const { url } = await serve(t, async (app) => {
    await app.register(multipart, { limits: { fileSize: 64 * MiB } })
    await app.register(longRunning, {
      onJobEnd: ends.onJobEnd,
      queue: sqsQueue({ queueUrl: emulators.queueUrl, client: sqs, receiveBatchSize: 1 }),
      store: dynamoDbStore({ tableName: emulators.tableName, client: dynamodb }),
      consume: true,
      waitSeconds: 20,
      results: bucket()
    })
    app.post('/upload', { longRunning: true }, readParts)
  })
  const file = randomBytes(11 * MiB)
  for (const key of [undefined, 'key-sqs']) {
    const response = await fetch(`${url}/upload`, { method: 'POST', body: form([file]), headers: key === undefined ? {} : { 'idempotency-key': key } })
    t.same(await response.json(), { files: [{ field: 'doc0', bytes: file.length, sha: sha(file) }], fields: { note: 'hello' } }, key === undefined ? 'through the queue\'s message' : 'keyed: through the job\'s item')
  }
  await ends.ended(2)
  t.same(await leftInBucket(), { objects: [], uploads: 0 })

  // A keyed upload whose job could not be queued (503): the job stays, its upload with it, for
  // the client's retry with the key, which queues it; the retry's own upload is removed.
  // The same bytes twice (a FormData draws a new boundary each time it is sent).
  const encoded = new Response(form([file]))
  const body = Buffer.from(await encoded.arrayBuffer())
  const headers = { 'idempotency-key': 'key-retry', 'content-type': encoded.headers.get('content-type') as string }
  const faults = injectFaults(sqs, [{ command: 'SendMessageCommand', times: 3 }])
  t.equal((await fetch(`${url}/upload`, { method: 'POST', body, headers })).status, 503)
  t.equal(faults.injected.get('SendMessageCommand'), 3)
  const retried = await fetch(`${url}/upload`, { method: 'POST', body, headers })
  t.same(await retried.json(), { files: [{ field: 'doc0', bytes: file.length, sha: sha(file) }], fields: { note: 'hello' } }, 'the retry ran, with its body')
  await ends.ended(3)
  t.same(await leftInBucket(), { objects: [], uploads: 0 })
})

t.test('a job whose uploaded body left the bucket before it ran (the lifecycle rule, say) ends with 500 UPLOAD_MISSING, not attempts that cannot succeed', async t => {
  let open: () => void = () => {}
  const gate = new Promise<void>(resolve => { open = resolve })
  let executions = 0
  const { url } = await serve(t, async (app) => {
    await app.register(longRunning, { waitSeconds: 20, results: bucket(), concurrency: 1 })
    app.get('/block', { longRunning: true }, async () => { await gate; return { ok: true } })
    app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload))
    app.post('/raw', { longRunning: true, bodyLimit: 64 * MiB }, async () => { executions += 1 })
  })
  const blocking = await fetch(`${url}/block`, { headers: { prefer: 'respond-async' } })
  const accepted = await fetch(`${url}/raw`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', prefer: 'respond-async' }, body: randomBytes(6 * MiB) })
  t.equal(accepted.status, 202, 'queued behind the first job')
  const { objects } = await leftInBucket()
  t.equal(objects.length, 1)
  await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: objects[0] }))
  open()
  t.equal((await fetch(url + (blocking.headers.get('location') ?? ''))).status, 200)
  const result = await fetch(url + (accepted.headers.get('location') ?? ''))
  t.equal(result.status, 500)
  t.match(await result.json(), { code: 'FST_LONG_RUNNING_UPLOAD_MISSING' })
  t.equal(executions, 0, 'the handler never ran')
})

t.test('S3 faults after acceptance: a replay that cannot read its body is retried after the back-off; an upload that cannot be removed is left to the lifecycle rule', async t => {
  const ends = jobEnds()
  const warnings: string[] = []
  const { url } = await serve(t, async (app) => {
    await app.register(longRunning, { onJobEnd: ends.onJobEnd, waitSeconds: 20, results: bucket() })
    app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: 64 * MiB }, (_request, body, done) => done(null, body))
    app.post('/put', { longRunning: true, bodyLimit: 64 * MiB }, async (request) => ({ sha: sha(request.body as Buffer) }))
  }, { logger: { level: 'warn', stream: { write: (line: string) => { warnings.push(JSON.parse(line).msg as string) } } } })
  const faults = injectFaults(s3.client, [{ command: 'GetObjectCommand', times: 3 }, { command: 'DeleteObjectCommand', times: 1 }])
  const body = randomBytes(3 * MiB)
  const response = await fetch(`${url}/put`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body })
  t.same(await response.json(), { sha: sha(body) }, 'the second attempt read it')
  t.equal(faults.injected.get('GetObjectCommand'), 3, 'the first attempt\'s three tries failed')
  await ends.ended(1)
  t.equal(faults.injected.get('DeleteObjectCommand'), 1)
  t.ok(warnings.some(msg => /uploaded request body failed; the bucket's lifecycle rule will/.test(msg)), 'said so')
  const { objects } = await leftInBucket()
  t.equal(objects.length, 1, 'left for the lifecycle rule')
  await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: objects[0] }))
})

/** Resolves the next time the S3 client has finished a `command` (refused or not). */
function afterCommand (command: string, count = 1): Promise<void> {
  let seen = 0
  return new Promise(resolve => {
    addMiddleware(s3.client, (next, context) => async (args) => {
      try {
        return await next(args)
      } finally {
        if (context.commandName === command && ++seen === count) resolve()
      }
    })
  })
}

t.test('a declared Content-Length sizes nothing: a terabyte announced, the parts stay 5 MiB, and the cut upload is aborted', async t => {
  const sizes: number[] = []
  addMiddleware(s3.client, (next, context) => async (args) => {
    if (context.commandName === 'UploadPartCommand') sizes.push((args.input.Body as Buffer).length)
    return await next(args)
  })
  const { url } = await serve(t, async (app) => {
    await app.register(multipart, { limits: { fileSize: 2 * 1024 ** 4 } })
    await app.register(longRunning, { store: memoryStore({ maxBytes: 48 * MiB }), waitSeconds: 20, results: bucket() })
    app.post('/upload', { longRunning: true }, readParts)
  })
  const parts = afterCommand('UploadPartCommand', 2)
  const aborted = afterCommand('AbortMultipartUploadCommand')
  const request = httpRequest(`${url}/upload`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=x', 'content-length': String(1024 ** 4) } })
  request.on('error', () => {})
  request.write(randomBytes(12 * MiB))
  await parts
  t.same(sizes.slice(0, 2), [5 * MiB, 5 * MiB], 'S3\'s smallest parts, whatever the client announced; within a 48 MiB budget')
  request.destroy()
  await aborted
  t.same(await leftInBucket(), { objects: [], uploads: 0 })
})

t.test('the embedded default\'s budget counts a parsed body the route keeps whole, uploaded or not: 30 MiB of JSON through a 24 MiB budget is refused', async t => {
  const ends = jobEnds()
  const { url } = await serve(t, async (app) => {
    await app.register(longRunning, { store: memoryStore({ maxBytes: 24 * MiB }), onJobEnd: ends.onJobEnd, waitSeconds: 20, results: bucket() })
    app.post('/json', { longRunning: true, bodyLimit: 64 * MiB }, async (request) => ({ length: (request.body as { text: string }).text.length }))
  })
  const deleted = afterCommand('DeleteObjectCommand')
  const text = 'x'.repeat(30 * MiB)
  const large = await fetch(`${url}/json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) })
  t.equal(large.status, 503, 'the parser holds its copy whole: only the kept bytes went to the bucket')
  await large.arrayBuffer()
  const small = await fetch(`${url}/json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: text.slice(0, 8 * MiB) }) })
  t.same(await small.json(), { length: 8 * MiB }, 'one that fits goes through the bucket')
  await ends.ended(1)
  await deleted
  t.same(await leftInBucket(), { objects: [], uploads: 0 })
})

t.test('a multipart route\'s hooks before its handler: the upload waits for them (the client is held back) instead of piling up in memory', async t => {
  let hookRuns = 0
  const { url } = await serve(t, async (app) => {
    await app.register(multipart, { limits: { fileSize: 256 * MiB } })
    // 40 MiB would not fit if the body piled up while the hook runs (both copies count then).
    await app.register(longRunning, { store: memoryStore({ maxBytes: 24 * MiB }), waitSeconds: 20, results: bucket() })
    // A slow authorisation lookup, say: the length does not matter to what is asserted.
    app.post('/upload', { longRunning: true, preHandler: async () => { hookRuns += 1; await new Promise(resolve => setTimeout(resolve, 500)) } }, readParts)
  })
  const file = randomBytes(40 * MiB)
  const response = await fetch(`${url}/upload`, { method: 'POST', body: form([file]) })
  t.equal(response.status, 200)
  t.same(await response.json(), { files: [{ field: 'doc0', bytes: file.length, sha: sha(file) }], fields: { note: 'hello' } })
  t.equal(hookRuns, 2, 'on the HTTP side, and in the job')
})

t.test('a client gone after its whole body, while a hook runs: its job runs with the upload whole, or (its address gone with it) is refused and leaves nothing; so does one refused after it left', async t => {
  const ends = jobEnds()
  const executions: string[] = []
  const { url } = await serve(t, async (app) => {
    await app.register(longRunning, { onJobEnd: ends.onJobEnd, waitSeconds: 20, results: bucket() })
    app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: 64 * MiB }, (_request, body, done) => done(null, body))
    app.post('/put', {
      longRunning: true,
      bodyLimit: 64 * MiB,
      // Waits, on the HTTP side only, for the client to go; then lets it in, or refuses it.
      preValidation: async (request, reply) => {
        if (request.longRunning !== null) return
        const { socket } = request.raw
        if (!socket.destroyed) await new Promise(resolve => socket.once('close', resolve))
        if (request.headers['x-refuse'] === 'yes') await reply.code(401).send({ refused: true })
      }
    }, async (request) => { executions.push(sha(request.body as Buffer)) })
  }, { trustProxy: true })
  const send = (headers: Record<string, string>): Buffer => {
    const body = randomBytes(6 * MiB)
    const request = httpRequest(`${url}/put`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': String(body.length), ...headers } })
    request.on('error', () => {})
    // The whole body, then gone, without waiting for an answer.
    request.end(body, () => setImmediate(() => request.destroy()))
    return body
  }
  // Behind a proxy, the client's address is in its request: the job can be replayed from it.
  const body = send({ 'x-forwarded-for': '203.0.113.9' })
  await ends.ended(1)
  t.same(executions, [sha(body)], 'the job read its upload whole')
  t.same(await leftInBucket(), { objects: [], uploads: 0 }, 'and its end removed it')

  for (const [name, headers] of [['its address gone with its socket (400)', {}], ['refused by a hook (401)', { 'x-refuse': 'yes', 'x-forwarded-for': '203.0.113.9' }]] as const) {
    const deleted = afterCommand('DeleteObjectCommand')
    send(headers)
    await deleted
    t.same(await leftInBucket(), { objects: [], uploads: 0 }, `${name} after its client left: removed`)
  }
  t.equal(executions.length, 1)
})

t.test('a job whose message names an object that is no request\'s upload (a bodies adapter gone wrong) never reads nor removes it: 500 INVALID_MESSAGE, the handler never run', async t => {
  const real = bucket()
  // Every upload stored under one other job's key.
  const wrong = new Proxy(real, {
    get: (target, name: keyof typeof real) => {
      if (name === 'upload') return () => target.upload?.('someone-else')
      const value = target[name]
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
  let executions = 0
  const { url } = await serve(t, async (app) => {
    await app.register(longRunning, { waitSeconds: 20, results: wrong })
    app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: 64 * MiB }, (_request, body, done) => done(null, body))
    app.post('/put', { longRunning: true, bodyLimit: 64 * MiB }, async () => { executions += 1 })
  })
  const response = await fetch(`${url}/put`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: randomBytes(2 * MiB) })
  t.equal(response.status, 500)
  t.match(await response.json(), { code: 'FST_LONG_RUNNING_INVALID_MESSAGE', message: /is not an uploaded request body/ })
  t.equal(executions, 0)
  const { objects } = await leftInBucket()
  t.same(objects, ['results/someone-else/request'], 'not removed either')
  await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: objects[0] }))
})

t.test('@fastify/multipart reading the body before the handler (attachFieldsToBody, a hook\'s request.file()): nothing waits for it, the job gets the whole upload', async t => {
  const attachedApp = await serve(t, async (app) => {
    await app.register(multipart, { attachFieldsToBody: true, limits: { fileSize: 64 * MiB } })
    await app.register(longRunning, { waitSeconds: 20, results: bucket() })
    app.post('/attached', { longRunning: true }, async (request) => {
      const { doc0 } = request.body as { doc0: { toBuffer: () => Promise<Buffer> } }
      const data = await doc0.toBuffer()
      return { bytes: data.length, sha: sha(data) }
    })
  })
  const hookedApp = await serve(t, async (app) => {
    await app.register(multipart, { limits: { fileSize: 64 * MiB } })
    await app.register(longRunning, { waitSeconds: 20, results: bucket() })
    app.post('/hooked', {
      longRunning: true,
      // Reads the file on both sides, as an app checking a signature before accepting would.
      preValidation: async (request) => {
        const file = await request.file()
        const data = await (file as NonNullable<typeof file>).toBuffer()
        ;(request as unknown as { checked: string }).checked = sha(data)
      }
    }, async (request) => ({ sha: (request as unknown as { checked: string }).checked }))
  })
  const file = randomBytes(8 * MiB)
  const attached = await fetch(`${attachedApp.url}/attached`, { method: 'POST', body: form([file]) })
  t.same(await attached.json(), { bytes: file.length, sha: sha(file) })
  const hooked = await fetch(`${hookedApp.url}/hooked`, { method: 'POST', body: form([file]) })
  t.same(await hooked.json(), { sha: sha(file) })
})

// HTTP/2: a client answered mid-upload (refused by a hook) could keep its stream open and go
// on sending, its body and budget held until it closed: the stream is cut with NO_ERROR once the
// answer is out (RFC 9113 §8.1), and its budget comes back at once.
t.test('HTTP/2: an upload refused by a hook mid-body: its stream is closed with NO_ERROR after the answer, its budget freed, its upload aborted', async t => {
  const ends = jobEnds()
  const app = Fastify({ http2: true })
  t.teardown(async () => await app.close())
  await app.register(multipart, { limits: { fileSize: 256 * MiB } })
  // Room for one upload's parts in flight (see the budget tests above), not two.
  await app.register(longRunning, { store: memoryStore({ maxBytes: 24 * MiB }), onJobEnd: ends.onJobEnd, waitSeconds: 20, results: bucket() })
  app.post('/upload', {
    longRunning: true,
    preHandler: async (request, reply) => { if (request.headers.authorization !== 'ok') await reply.code(401).send({ refused: true }) }
  }, async (request) => await readParts(request as unknown as FastifyRequest))
  // On HTTP/2 a response is over (onResponse) when its stream closes.
  const refusedStream = new Promise<number>(resolve => app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode === 401) resolve(request.raw.stream.rstCode as number)
  }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const client = http2.connect(`http://127.0.0.1:${(app.server.address() as { port: number }).port}`)
  t.teardown(() => client.destroy())

  const file = randomBytes(8 * MiB)
  const encoded = new Response(form([file]))
  const body = Buffer.from(await encoded.arrayBuffer())
  const headers = { ':method': 'POST', ':path': '/upload', 'content-type': encoded.headers.get('content-type') as string }
  const answer = async (stream: http2.ClientHttp2Stream): Promise<{ status: number, text: string }> => {
    const status = await new Promise<number>(resolve => stream.once('response', response => resolve(response[':status'] as number)))
    let text = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => { text += chunk })
    // The answer's end, not the stream's close: Node's client keeps a stream reset with NO_ERROR
    // open while its own side has not ended.
    await new Promise(resolve => stream.once('end', resolve))
    return { status, text }
  }

  // Past the threshold, then refused, and never ended by the client.
  const refused = client.request(headers)
  const refusal = answer(refused)
  refused.write(body.subarray(0, 3 * MiB))
  t.same(await refusal, { status: 401, text: '{"refused":true}' })
  t.equal(await refusedStream, http2.constants.NGHTTP2_NO_ERROR, 'its stream closed by the server, without an error')

  // A whole upload fits the budget again.
  const accepted = client.request({ ...headers, authorization: 'ok' })
  const result = answer(accepted)
  accepted.end(body)
  const { status, text } = await result
  t.equal(status, 200)
  t.same(JSON.parse(text), { files: [{ field: 'doc0', bytes: file.length, sha: sha(file) }], fields: { note: 'hello' } })
  await ends.ended(1)
  t.same(await leftInBucket(), { objects: [], uploads: 0 }, 'the refused one aborted, the accepted one removed with its job')
})

// Fastify reads no body for GET, HEAD and TRACE (lib/handle-request.js): a body sent with one is
// no part of the request, on either side (review 3, t26).
t.test('a GET with a body, which Fastify never reads: the long-running route answers as its synchronous twin, keeps none of it, uploads nothing', async t => {
  const ends = jobEnds()
  const { url } = await serve(t, async (app) => {
    await app.register(longRunning, { onJobEnd: ends.onJobEnd, waitSeconds: 20, results: bucket() })
    for (const [path, bodyLimit] of [['/small', 1024], ['/large', 8 * MiB]] as const) {
      const handler = async (request: FastifyRequest): Promise<unknown> => ({ body: request.body ?? null })
      app.get(`/sync${path}`, { bodyLimit }, handler)
      app.get(`/job${path}`, { bodyLimit, longRunning: true }, handler)
    }
  })
  const get = async (path: string, size: number): Promise<{ status: number, body: string }> => await new Promise((resolve, reject) => {
    const request = httpRequest(`${url}${path}`, { method: 'GET', headers: { 'content-type': 'application/json', 'content-length': String(size) } }, response => {
      let body = ''
      response.on('data', (chunk: Buffer) => { body += chunk.toString() })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }))
    })
    request.on('error', reject)
    request.end(Buffer.alloc(size, ' '))
  })
  commands.length = 0
  let jobs = 0
  for (const path of ['/small', '/large']) {
    for (const size of [100, 3 * MiB]) {
      const sync = await get(`/sync${path}`, size)
      const job = await get(`/job${path}`, size)
      jobs += 1
      t.same(job, sync, `${path}, ${size} bytes: ${sync.status} ${sync.body}`)
      t.equal(job.status, 200)
    }
  }
  await ends.ended(jobs)
  t.notOk(commands.some(name => /Upload|PutObject|GetObject/.test(name)), 'nothing went to the bucket, nor came back')
})

// The HTTP side and the worker deployed apart, the worker without the bucket (its
// JOBS_RESULTS_BUCKET forgotten, say): a configuration error, said once, not attempts that all
// fail alike (review 3, t35).
t.test('a worker without the bucket that the HTTP side uploaded a body to: the job ends once with 500 UPLOAD_UNREADABLE, logged as an error, the handler never run', async t => {
  const store = memoryStore()
  const queue = memoryQueue()
  let executions = 0
  const route = (app: FastifyInstance): void => {
    app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload))
    app.post('/raw', { longRunning: true, bodyLimit: 64 * MiB }, async () => { executions += 1 })
  }
  const http = await serve(t, async (app) => {
    await app.register(longRunning, { store, queue, consume: false, waitSeconds: 20, results: bucket() })
    route(app)
  })
  const events: JobEndEvent[] = []
  let ended: () => void = () => {}
  const jobEnded = new Promise<void>(resolve => { ended = resolve })
  const errors: Array<{ msg: string, err?: { code?: string } }> = []
  await serve(t, async (app) => {
    await app.register(longRunning, { store, queue, consume: true, onJobEnd: (event) => { events.push(event); ended() } })
    route(app)
  }, { logger: { level: 'error', stream: { write: (line: string) => { errors.push(JSON.parse(line)) } } } })
  const response = await fetch(`${http.url}/raw`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: randomBytes(3 * MiB) })
  t.equal(response.status, 500)
  t.match(await response.json(), { code: 'FST_LONG_RUNNING_UPLOAD_UNREADABLE', message: /uploaded to a bucket \(results\/.+\/request\) and this worker has no bucket to read it from/ })
  t.equal(executions, 0, 'the handler never ran')
  await jobEnded
  t.match(events, [{ outcome: 'failed', statusCode: 500, attempt: 1 }], 'ended at its first attempt, once')
  t.match(errors, [{ msg: /this worker has no `results` bucket/, err: { code: 'FST_LONG_RUNNING_UPLOAD_UNREADABLE' } }], 'said at error level, once')
  // Nobody here can remove it: the lifecycle rule would.
  const { objects } = await leftInBucket()
  t.equal(objects.length, 1)
  await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: objects[0] }))
})

// The ETag S3 gave the upload travels with the job, and the replay asks for that object only
// (If-Match): another one put under the key is refused before a byte of it reaches the route
// (review 3, t27; the strict layer answers If-Match as S3 does, which s3rver does not).
t.test('an uploaded body replaced in the bucket before its job ran (same length, other bytes): S3 refuses it on its ETag, the route never sees a byte, the job ends 500 UPLOAD_MISSING', async t => {
  let open: () => void = () => {}
  const gate = new Promise<void>(resolve => { open = resolve })
  const seen: string[] = []
  const conditions: unknown[] = []
  // Before the strict layer, which refuses the read itself.
  s3.client.middlewareStack.add((next, context) => async (args) => {
    if (context.commandName === 'GetObjectCommand') conditions.push((args.input as { IfMatch?: string }).IfMatch)
    return await next(args)
  }, { step: 'initialize', name: 'if-match-seen', priority: 'high' })
  const { url } = await serve(t, async (app) => {
    await app.register(longRunning, { waitSeconds: 20, results: bucket(), concurrency: 1 })
    app.get('/block', { longRunning: true }, async () => { await gate; return { ok: true } })
    app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload))
    app.post('/raw', { longRunning: true, bodyLimit: 64 * MiB }, async (request) => {
      for await (const chunk of request.body as AsyncIterable<Buffer>) seen.push(chunk.subarray(0, 8).toString())
    })
  })
  const blocking = await fetch(`${url}/block`, { headers: { prefer: 'respond-async' } })
  const locations: string[] = []
  // One PutObject, one multipart upload: each gives the object its ETag.
  for (const size of [2 * MiB, 6 * MiB]) {
    const accepted = await fetch(`${url}/raw`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', prefer: 'respond-async' }, body: Buffer.alloc(size, 'a') })
    t.equal(accepted.status, 202)
    locations.push(accepted.headers.get('location') ?? '')
  }
  const { objects } = await leftInBucket()
  t.equal(objects.length, 2)
  for (const key of objects) {
    const { ContentLength } = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }))
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: Buffer.alloc(ContentLength ?? 0, 'E') }))
  }
  open()
  t.equal((await fetch(url + (blocking.headers.get('location') ?? ''))).status, 200)
  for (const location of locations) {
    const result = await fetch(url + location)
    t.equal(result.status, 500)
    t.match(await result.json(), { code: 'FST_LONG_RUNNING_UPLOAD_MISSING' })
  }
  t.same(seen, [], 'the route never saw a byte of the other objects')
  t.equal(conditions.length, 2, 'each replay read once: not retried')
  t.ok(conditions.every(etag => typeof etag === 'string' && etag.length > 2), 'each read named the upload\'s ETag')
})
