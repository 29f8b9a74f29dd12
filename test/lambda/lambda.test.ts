import { GetItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb'
import { DeleteMessageCommand, type Message } from '@aws-sdk/client-sqs'
import { gunzipSync } from 'node:zlib'
import t, { type Test } from 'tap'
import { startEmulators } from '../../example/emulators.js'
import { decodeMessage } from '../../src/job/message.js'
import { albEvent, albMultiValueEvent, httpApiEvent, lambdaContext, restEvent, sqsEvent } from '../helpers/events.js'
import { lambdaDriver } from '../helpers/lambda-driver.js'
import { pattern } from '../helpers/pattern.js'
import { pollUntil } from '../helpers/poll.js'
import { itemBytes } from '../helpers/strict-aws.js'
import { randomBody } from '../helpers/random.js'

// example/lambda.ts driven as Lambda drives it: API Gateway and ALB events into `handler`,
// SQS events of messages really received from the queue into `worker`, on the emulators.
const emulators = await startEmulators({ visibilityTimeout: 120 })
t.teardown(() => emulators.close())
Object.assign(process.env, emulators.env, { WAIT_SECONDS: '0', LOG_LEVEL: 'silent' })
const { handler, worker } = await import('../../example/lambda.js')
// The same example configured for ALB target groups with multi-value headers on.
process.env.ALB_MULTI_VALUE_HEADERS = 'true'
const albMultiModule = '../../example/lambda.js?alb-multi-value' // a second instance of the module, read with this env
const { handler: albMultiHandler } = await import(albMultiModule) as typeof import('../../example/lambda.js')
delete process.env.ALB_MULTI_VALUE_HEADERS
// And once more with the default wait (25 s), for the waits the Lambda deadline cuts short.
process.env.WAIT_SECONDS = '25'
const waitingModule = '../../example/lambda.js?waiting'
const { handler: waitingHandler } = await import(waitingModule) as typeof import('../../example/lambda.js')
process.env.WAIT_SECONDS = '0'

interface HttpResult { statusCode: number, headers: Record<string, string>, body: string, isBase64Encoded: boolean }
const http = async (event: unknown): Promise<HttpResult> => await (handler as (e: unknown, c: unknown) => Promise<HttpResult>)(event, lambdaContext(30_000))
const albMulti = async (event: unknown): Promise<HttpResult> => await (albMultiHandler as (e: unknown, c: unknown) => Promise<HttpResult>)(event, lambdaContext(30_000))
const bodyOf = (result: HttpResult): Buffer => Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8')
const executions = async (): Promise<number> => JSON.parse((await http(restEvent({ method: 'GET', path: '/stats' }))).body).executions

const { receive, runBatch } = lambdaDriver(emulators, worker)

const locationPath = (result: HttpResult): string => result.headers.location ?? ''
const query = (location: string): Record<string, string> => Object.fromEntries(new URL(location, 'http://x').searchParams)
const pathOf = (location: string): string => location.split('?')[0] as string

t.test('REST API: the stage stays in Location; the worker stores the result; a duplicate never runs again', async t => {
  const accepted = await http(restEvent({ method: 'GET', path: '/payload', query: { delay: '0' } }))
  t.equal(accepted.statusCode, 303)
  const location = locationPath(accepted)
  t.match(location, /^\/prod\/async-response\/[0-9a-f-]{36}\?hop=1$/, 'the stage the client used')
  t.equal(accepted.headers['cache-control'], 'no-store')

  const before = await executions()
  const [message] = await receive(1)
  t.same(await runBatch([message as Message]), [])
  t.equal(await executions(), before + 1)
  t.same(await runBatch([message as Message]), [], 'the duplicate is acknowledged')
  t.equal(await executions(), before + 1, '...and did not run the handler again')

  // API Gateway strips the stage before the function sees the path.
  const result = await http(restEvent({ method: 'GET', path: pathOf(location).slice('/prod'.length), query: query(location) }))
  t.equal(result.statusCode, 200)
  t.equal(result.body, '{"MESSAGE":"It took 0 seconds to generate this."}')

  const { Items: items = [] } = await emulators.dynamodb.send(new ScanCommand({ TableName: emulators.tableName }))
  t.ok(items.length > 0)
  for (const item of items) {
    t.ok(typeof item.id?.S === 'string', 'every item has its id')
    t.ok(Number(item.ttl?.N) > Date.now() / 1000, 'and a future ttl')
  }
})

t.test('binary bodies of 300 KB (HTTP API) and 600 KiB (ALB) round-trip byte-exact through queue, store and base64', async t => {
  for (const [size, event] of [[300 * 1024, httpApiEvent], [600 * 1024, albEvent]] as const) {
    const body = randomBody(size)
    const accepted = await http(event({ method: 'POST', path: '/echo', query: { delay: '0' }, headers: { 'content-type': 'application/octet-stream' }, body }))
    t.equal(accepted.statusCode, 303)
    const location = locationPath(accepted)
    t.match(location, /^\/async-response\//, 'no stage on this path')
    const [message] = await receive(1)
    t.ok(decodeMessage(message?.Body ?? '').request === undefined, `${size} bytes: claim-checked through the store`)
    t.same(await runBatch([message as Message]), [])
    const result = await http(event({ method: 'GET', path: pathOf(location), query: query(location) }))
    t.equal(result.statusCode, 201)
    t.equal(result.isBase64Encoded, true)
    t.equal(result.headers['content-type'], 'application/octet-stream')
    t.ok(bodyOf(result).equals(body), `${size} bytes byte-exact`)
    const id = pathOf(location).split('/').pop() as string
    const { Item = {} } = await emulators.dynamodb.send(new GetItemCommand({ TableName: emulators.tableName, Key: { id: { S: id } }, ConsistentRead: true }))
    t.ok(itemBytes(Item) <= 4096, `${size} bytes: the job item is ${itemBytes(Item)} bytes, within one read unit`)
  }
})

/** What API Gateway or the ALB would get: the handler's result as JSON, checked against the front end's limit. */
const delivered = (t: Test, result: HttpResult, limit: number, what: string): void => {
  const size = Buffer.byteLength(JSON.stringify(result))
  t.ok(size <= limit, `${what}: ${size} bytes of response JSON, within the front end's ${limit}`)
}

t.test('a result only ever stored if its front end can return it (Lambda 6,291,556 bytes with base64; ALB 1 MB)', async t => {
  const cases = [
    { event: restEvent, size: 4_000_000, limit: 6_291_556, fits: true },
    { event: restEvent, size: 5_242_880, limit: 6_291_556, fits: false },
    { event: albEvent, size: 700_000, limit: 1_000_000, fits: true },
    { event: albEvent, size: 900_000, limit: 1_000_000, fits: false }
  ]
  for (const { event, size, limit, fits } of cases) {
    const what = `${event === albEvent ? 'ALB' : 'REST'} ${size} bytes`
    const accepted = await http(event({ method: 'GET', path: '/bytes', query: { size: String(size) } }))
    const [message] = await receive(1)
    t.same(await runBatch([message as Message]), [], `${what}: the job ends`)
    const location = locationPath(accepted)
    const result = await http(event({ method: 'GET', path: event === albEvent ? pathOf(location) : pathOf(location).slice(5), query: query(location) }))
    delivered(t, result, limit, what)
    if (fits) {
      t.equal(result.statusCode, 200, what)
      t.ok(bodyOf(result).equals(pattern(size)), `${what}: byte-exact`)
    } else {
      t.equal(result.statusCode, 502, what)
      t.match(JSON.parse(result.body), { code: 'FST_LONG_RUNNING_RESPONSE_TOO_LARGE' }, `${what}: ends at completion with the contract's 502`)
    }
  }
})

t.test('a gzip answer (the example\'s @fastify/compress) goes out base64-encoded and decodes byte-exact', async t => {
  const text = 'ünïcødé text, compressible; '.repeat(400)
  const accepted = await http(restEvent({ method: 'POST', path: '/echo', query: { delay: '0' }, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: Buffer.from(text) }))
  const [message] = await receive(1)
  await runBatch([message as Message])
  const location = locationPath(accepted)
  const result = await http(restEvent({ method: 'GET', path: pathOf(location).slice(5), query: query(location), headers: { 'Accept-Encoding': 'gzip' } }))
  t.equal(result.statusCode, 201)
  t.equal(result.headers['content-encoding'], 'gzip')
  t.equal(result.isBase64Encoded, true, 'gzip bytes are never sent as a UTF-8 string')
  t.equal(gunzipSync(bodyOf(result)).toString(), text)
})

t.test('a batch of good, poison and duplicate records: only the live duplicate comes back', async t => {
  await http(restEvent({ method: 'GET', path: '/payload', query: { delay: '0.2' } }))
  const [good] = await receive(1) as [Message]
  const poison = ['', 'not json', '{"v":99}', randomBody(64).toString('latin1'), JSON.stringify({ v: 1, id: 'x'.repeat(100000) })]
  const duplicate = { ...good, MessageId: 'duplicate-of-good' }
  const before = await executions()
  const event = sqsEvent([...poison, good, duplicate])
  const { batchItemFailures } = await worker(event, lambdaContext())
  t.same(batchItemFailures, [{ itemIdentifier: 'duplicate-of-good' }], 'poison dropped, good done, its concurrent twin returned')
  t.equal(await executions(), before + 1, 'the handler ran once')
  await emulators.sqs.send(new DeleteMessageCommand({ QueueUrl: emulators.queueUrl, ReceiptHandle: good.ReceiptHandle }))
})

t.test('a job whose worker reaches its deadline ends with 504, its record done and its message deleted', async t => {
  const accepted = await http(restEvent({ method: 'GET', path: '/payload', query: { delay: '30' } }))
  const [message] = await receive(1) as [Message]
  // 2.5 s left in the invocation: the attempt stops a second before, and stores its 504.
  t.same(await runBatch([message], lambdaContext(2500)), [], 'acknowledged: no retry that would time out again')
  const result = await http(restEvent({ method: 'GET', path: pathOf(locationPath(accepted)).slice(5) }))
  t.equal(result.statusCode, 504)
  t.match(JSON.parse(result.body), { code: 'FST_LONG_RUNNING_JOB_TIMEOUT' })
})

t.test('anything but an SQS event is refused with a clear error, never run as a request', async t => {
  for (const event of [{}, null, { Records: 'x' }, restEvent({ method: 'GET', path: '/' }), { Records: [{ eventSource: 'aws:s3', s3: {} }] }]) {
    await t.rejects(worker(event as never, lambdaContext()), { code: 'FST_LONG_RUNNING_INVALID_EVENT' })
  }
  await t.rejects(worker(sqsEvent([]), {} as never), { code: 'FST_LONG_RUNNING_INVALID_EVENT' })
  t.same(await worker(sqsEvent([]), lambdaContext()), { batchItemFailures: [] }, 'an empty batch is fine')
})

t.test('the same record in two concurrent invocations (a visibility timeout that ran out mid-job) runs once', async t => {
  await http(restEvent({ method: 'GET', path: '/payload', query: { delay: '0.3' } }))
  const [message] = await receive(1) as [Message]
  const before = await executions()
  const [first, second] = await Promise.all([worker(sqsEvent([message]), lambdaContext()), worker(sqsEvent([message]), lambdaContext())])
  const failures = [...first.batchItemFailures, ...second.batchItemFailures]
  t.same(failures, [{ itemIdentifier: message.MessageId }], 'one invocation ran it, the other handed it back')
  t.equal(await executions(), before + 1)
  // Once handed back and delivered again, the finished job is acknowledged without running.
  t.same(await runBatch([message]), [])
  t.equal(await executions(), before + 1)
})

t.test('a record handed back keeps its place in batchItemFailures even if its visibility cannot be changed', async t => {
  const accepted = await http(restEvent({ method: 'GET', path: '/payload', query: { delay: '0.3' } }))
  const [message] = await receive(1) as [Message]
  const first = worker(sqsEvent([message]), lambdaContext())
  // Once the first invocation holds the job, a copy with a receipt SQS no longer knows arrives.
  const status = restEvent({ method: 'GET', path: pathOf(locationPath(accepted)).slice(5), headers: { Prefer: 'respond-async' } })
  await pollUntil(async () => JSON.parse((await http(status)).body).status, state => state === 'running')
  const stale = { ...message, MessageId: 'stale-receipt', ReceiptHandle: 'not-a-receipt-handle' }
  const second = await worker(sqsEvent([stale]), lambdaContext())
  t.same(second.batchItemFailures, [{ itemIdentifier: 'stale-receipt' }])
  t.same((await first).batchItemFailures, [])
  await emulators.sqs.send(new DeleteMessageCommand({ QueueUrl: emulators.queueUrl, ReceiptHandle: message.ReceiptHandle }))
})

t.test('ALB, both header modes: what the load balancer reads of the answer carries Location and every header', async t => {
  // The ALB reads `headers` when the target group's multi-value attribute is off, and only
  // `multiValueHeaders` when it is on (ELB Guide, "Multi-value headers").
  const modes = [
    { name: 'multi-value off', events: albEvent, handle: http, read: (result: HttpResult & { multiValueHeaders?: Record<string, string[]> }) => result.headers },
    {
      name: 'multi-value on (ALB_MULTI_VALUE_HEADERS=true)',
      events: albMultiValueEvent,
      handle: albMulti,
      read: (result: HttpResult & { multiValueHeaders?: Record<string, string[]> }) =>
        Object.fromEntries(Object.entries(result.multiValueHeaders ?? {}).map(([name, values]) => [name, values.join(', ')]))
    }
  ]
  for (const { name, events, handle, read } of modes) {
    const body = Buffer.from(`hello from ${name}`)
    const accepted = await handle(events({ method: 'POST', path: '/echo', query: { delay: '0' }, headers: { 'content-type': 'text/plain' }, body }))
    const location = read(accepted).location
    t.match(location, /^\/async-response\/[0-9a-f-]{36}\?hop=1$/, `${name}: Location reaches the client`)
    const [message] = await receive(1)
    await runBatch([message as Message])
    const result = await handle(events({ method: 'GET', path: pathOf(location as string), query: query(location as string) }))
    t.equal(result.statusCode, 201, name)
    t.match(read(result), { 'x-echo': '1', 'content-type': /^text\/plain/ }, `${name}: the route's headers reach the client`)
    t.equal(bodyOf(result).toString(), `hello from ${name}`)
  }
})

t.test('Prefer: respond-async, wait=N never waits past the Lambda deadline: a function with a second left answers 202 at once', async t => {
  // With no time to wait, the 202 says Retry-After: 1 (a wait that ran its course says 0).
  const event = restEvent({ method: 'GET', path: '/payload', query: { delay: '0' }, headers: { Prefer: 'respond-async, wait=20' } })
  const accepted = await (waitingHandler as (e: unknown, c: unknown) => Promise<HttpResult>)(event, lambdaContext(1_000))
  t.equal(accepted.statusCode, 202)
  t.equal(accepted.headers['retry-after'], '1')
  t.equal(accepted.headers['preference-applied'], 'respond-async, wait=20')
  t.match(locationPath(accepted), /^\/prod\/async-response\/[0-9a-f-]{36}/)
  // Its job still runs, and the queue is left empty for the tests after this one.
  const [message] = await receive(1)
  t.same(await runBatch([message as Message]), [])
})
