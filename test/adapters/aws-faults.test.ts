import { CreateQueueCommand } from '@aws-sdk/client-sqs'
import t, { type Test } from 'tap'
import { emulatorClients, startEmulators } from '../../example/emulators.js'
import { dynamoDbStore, sqsQueue, type JobStore, type SqsJobQueue } from '../../src/index.js'
import { newJobId } from '../../src/core/job-id.js'
import { buildTestApp, closeTestApp, type TestApp } from '../helpers/app.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { addMiddleware, injectFaults, type Fault } from '../helpers/faults.js'
import { strictDynamoDb, strictSqs } from '../helpers/strict-aws.js'

// Backends failing the way AWS fails, injected by a middleware on real SDK clients talking to
// the emulators: nothing is lost, nothing runs twice.
const emulators = await startEmulators()
t.teardown(() => emulators.close())

/** Fresh clients on the emulators (middleware stays per test), with faults. */
function clients (t: Test, sqsFaults: Fault[] = [], dynamoFaults: Fault[] = []) {
  const { sqs, dynamodb } = emulatorClients(emulators.env, { maxAttempts: 1 })
  t.teardown(() => { sqs.destroy(); dynamodb.destroy() })
  strictSqs(sqs)
  strictDynamoDb(dynamodb)
  return { sqs, dynamodb, sqsFaults: injectFaults(sqs, sqsFaults), dynamoFaults: injectFaults(dynamodb, dynamoFaults) }
}

let queues = 0

/** An app on its own queue (no other test's consumer can take its jobs), closed with its test. */
async function awsApp (t: Test, c: ReturnType<typeof clients>, options: { consume?: boolean, store?: JobStore } = {}) {
  const { QueueUrl: queueUrl } = await emulators.sqs.send(new CreateQueueCommand({ QueueName: `faults-${queues++}` }))
  const test = await buildTestApp({
    queue: sqsQueue({ queueUrl: queueUrl as string, client: c.sqs, receiveBatchSize: 1, retryDelaySeconds: 0 }),
    store: options.store ?? dynamoDbStore({ tableName: emulators.tableName, client: c.dynamodb }),
    consume: options.consume ?? true,
    waitSeconds: 30,
    pollIntervalMs: 20,
    // Retry back-offs pass at once (what is retried is the test, not how long it waits);
    // timeouts and lease renewals never come due.
    clock: new FakeClock({ autoAdvanceUpToMs: 5_000 })
  })
  t.teardown(() => closeTestApp(test))
  return test
}

/** A container worker on `http`'s queue (it serves no requests: every job it runs, it received). */
async function workerOf (t: Test, http: TestApp, c: ReturnType<typeof clients>, store = dynamoDbStore({ tableName: emulators.tableName, client: c.dynamodb })) {
  const { queueUrl } = http.app.longRunning.queue as SqsJobQueue
  const worker = await buildTestApp({
    queue: sqsQueue({ queueUrl, client: c.sqs, receiveBatchSize: 1, retryDelaySeconds: 0 }),
    store,
    consume: true,
    clock: new FakeClock({ autoAdvanceUpToMs: 5_000 })
  })
  t.teardown(() => closeTestApp(worker))
  await worker.app.ready()
  return worker
}

t.test('adapter options are checked, naming the option', async t => {
  const cases: Array<[() => unknown, string]> = [
    [() => sqsQueue(undefined as never), 'Expected `sqsQueue options` to be an object, got undefined'],
    [() => sqsQueue({ queueUrl: 'jobs' }), 'Expected `queueUrl` to be the URL of a standard SQS queue (FIFO queues are not supported), got "jobs"'],
    [() => sqsQueue({ queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/jobs.fifo' }),
      'Expected `queueUrl` to be the URL of a standard SQS queue (FIFO queues are not supported), got "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs.fifo"'],
    [() => sqsQueue({ queueUrl: emulators.queueUrl, maxMessageBytes: 2 * 1024 * 1024 }), 'Expected `maxMessageBytes` to be an integer from 1024 to 1048576, got 2097152'],
    [() => sqsQueue({ queueUrl: emulators.queueUrl, visibilityTimeoutSeconds: 0 }), 'Expected `visibilityTimeoutSeconds` to be an integer from 1 to 43200, got 0'],
    [() => sqsQueue({ queueUrl: emulators.queueUrl, retryDelaySeconds: -1 }), 'Expected `retryDelaySeconds` to be a number from 0 to 900, got -1'],
    [() => sqsQueue({ queueUrl: emulators.queueUrl, receiveBatchSize: 11 }), 'Expected `receiveBatchSize` to be an integer from 1 to 10, got 11'],
    [() => dynamoDbStore(null as never), 'Expected `dynamoDbStore options` to be an object, got null'],
    [() => dynamoDbStore({ tableName: 'a' }), 'Expected `tableName` to be a DynamoDB table name, got "a"']
  ]
  for (const [make, message] of cases) t.throws(make, { code: 'FST_LONG_RUNNING_INVALID_OPTION', message })
})

t.test('throttled claims and a lost receive: the job still runs once and completes', async t => {
  const c = clients(t,
    [{ command: 'ReceiveMessageCommand', name: 'ServiceUnavailable' }],
    [{ command: 'UpdateItemCommand', times: 2, name: 'ProvisionedThroughputExceededException' }]
  )
  const test = await awsApp(t, c, { consume: false })
  const worker = await workerOf(t, test, c)
  worker.gates.open('throttled')
  const response = await test.app.inject('/job/throttled')
  t.equal(response.statusCode, 201)
  t.equal(worker.runs.get('throttled'), 1, 'ran once')
  t.equal(c.dynamoFaults.injected.get('UpdateItemCommand'), 2)
  t.equal(c.sqsFaults.injected.get('ReceiveMessageCommand'), 1)
})

t.test('a completion that was written but reported as failed: kept, and the handler does not run again', async t => {
  const c = clients(t)
  const test = await awsApp(t, c, { consume: false })
  const worker = await workerOf(t, test, c)
  // The second UpdateItem of the job is its completion (the first is the claim).
  let updates = 0
  addMiddleware(c.dynamodb, (next, context) => async (args) => {
    const result = await next(args)
    if (context.commandName === 'UpdateItemCommand' && ++updates === 2) throw Object.assign(new Error('timeout'), { name: 'TimeoutError' })
    return result
  })
  worker.gates.open('ghost')
  const response = await test.app.inject('/job/ghost')
  t.equal(response.statusCode, 201)
  t.equal(worker.runs.get('ghost'), 1)
})

t.test('a send that fails once is sent again, and the job runs once', async t => {
  const c = clients(t, [{ command: 'SendMessageCommand', name: 'ServiceUnavailable', when: 'after' }])
  const test = await awsApp(t, c, { consume: false })
  const worker = await workerOf(t, test, c)
  worker.gates.open('resent')
  const response = await test.app.inject('/job/resent')
  t.equal(response.statusCode, 201)
  t.equal(worker.runs.get('resent'), 1, 'the duplicate message did not run it again')
})

t.test('SQS send keeps failing: 503 with Retry-After, and the job record is gone', async t => {
  const c = clients(t, [{ command: 'SendMessageCommand', name: 'ServiceUnavailable', times: 3 }])
  const test = await awsApp(t, c, { consume: false })
  let created: string | undefined
  addMiddleware(c.dynamodb, (next, context) => async (args) => {
    if (context.commandName === 'PutItemCommand') created = args.input.Item.id.S
    return await next(args)
  })
  const response = await test.app.inject('/job/unsent')
  t.equal(response.statusCode, 503)
  t.equal(response.headers['retry-after'], '1')
  t.ok(created)
  t.equal(await test.app.longRunning.store.get(created as string), undefined, 'no phantom job')
})

t.test('the store failing on the HTTP side answers 503 with Retry-After, never a hang, and names no AWS internals', async t => {
  const c = clients(t, [], [{ command: 'GetItemCommand', times: 1, name: 'ProvisionedThroughputExceededException' }])
  const test = await awsApp(t, c, { consume: false })
  const response = await fetch(`${await test.listen()}/async-response/44444444-4444-4444-8444-444444444444`)
  t.equal(response.status, 503)
  t.equal(response.headers.get('retry-after'), '1')
  const body = await response.text()
  t.equal(JSON.parse(body).code, 'FST_LONG_RUNNING_BACKEND')
  t.notMatch(body, /DynamoDB|GetItem|ProvisionedThroughput/, 'the body names no AWS internals')
})

t.test('DynamoDB leaving batch items unprocessed: retried, and bounded under sustained throttling', async t => {
  const c = clients(t)
  const store = dynamoDbStore({ tableName: emulators.tableName, client: c.dynamodb })
  const ids = [newJobId(), newJobId(), newJobId()]
  for (const id of ids) await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: Date.now() + 60_000 })
  // As DynamoDB does under load: a BatchGetItem answers none of the keys and hands them back.
  let unprocessed = 1
  let calls = 0
  addMiddleware(c.dynamodb, (next, context) => async (args) => {
    if (context.commandName !== 'BatchGetItemCommand') return await next(args)
    calls += 1
    if (unprocessed-- <= 0) return await next(args)
    return { output: { Responses: {}, UnprocessedKeys: args.input.RequestItems, $metadata: {} } }
  })
  const getMany = store.getMany?.bind(store) as NonNullable<typeof store.getMany>
  t.equal((await getMany(ids)).size, 3, 'unprocessed keys are asked for again')
  t.equal(calls, 2)
  unprocessed = Infinity
  calls = 0
  await t.rejects(getMany(ids), { code: 'FST_LONG_RUNNING_BACKEND', detail: /unprocessed after 8 tries/ }, 'a poll fails rather than block its waiters')
  t.equal(calls, 8)
})

t.test('a claim whose answer was lost and that the SDK sent again is recognised as the caller\'s own', async t => {
  // SDK retries on: a lost answer below the retry middleware, as a timeout after the write.
  const { sqs, dynamodb } = emulatorClients(emulators.env, { maxAttempts: 3 })
  t.teardown(() => { sqs.destroy(); dynamodb.destroy() })
  let lost = 0
  addMiddleware(dynamodb, (next, context) => async (args) => {
    const result = await next(args)
    const isClaim = context.commandName === 'UpdateItemCommand' && args.input.ExpressionAttributeValues?.[':pending'] !== undefined
    if (isClaim && lost++ === 0) throw Object.assign(new Error('socket hang up after the write'), { name: 'TimeoutError', $metadata: {} })
    return result
  }, 'deserialize')
  const store = dynamoDbStore({ tableName: emulators.tableName, client: dynamodb })
  const c = { sqs, dynamodb, sqsFaults: injectFaults(sqs, []), dynamoFaults: injectFaults(dynamodb, []) }
  // A worker of its own: a container claims only the jobs it receives, not those it accepts.
  const test = await awsApp(t, c, { store, consume: false })
  const worker = await workerOf(t, test, c, store)
  worker.gates.open('own')
  const response = await test.app.inject('/job/own')
  t.equal(response.statusCode, 201)
  t.equal(lost, 2, 'the claim was sent twice, the first answer lost')
  t.equal(worker.runs.get('own'), 1)
  t.match(await store.get(response.headers['x-job-id'] as string), { status: 'done', attempt: 1 }, 'one attempt: no lease waited out, no attempt spent')
})

t.test('an idempotency key\'s reservation whose answer was lost holds: the SDK\'s retry of it, and the client\'s', async t => {
  const keyed = { method: 'POST', url: '/job/reserved?open=1', payload: 'x', headers: { 'content-type': 'text/plain', 'idempotency-key': 'k' } }
  const isReservation = (context: { commandName: string }, args: { input: Record<string, any> }): boolean =>
    context.commandName === 'PutItemCommand' && String(args.input.Item?.id?.S).startsWith('k#')

  // Below the SDK's retries (dynalite: no item with the failed condition, the store reads it).
  const retried = emulatorClients(emulators.env, { maxAttempts: 3 })
  t.teardown(() => { retried.sqs.destroy(); retried.dynamodb.destroy() })
  let lost = 0
  addMiddleware(retried.dynamodb, (next, context) => async (args) => {
    const result = await next(args)
    if (isReservation(context, args) && lost++ === 0) throw Object.assign(new Error('socket hang up after the write'), { name: 'TimeoutError', $metadata: {} })
    return result
  }, 'deserialize')
  const store = dynamoDbStore({ tableName: emulators.tableName, client: retried.dynamodb })
  const first = await awsApp(t, { ...retried, sqsFaults: injectFaults(retried.sqs, []), dynamoFaults: injectFaults(retried.dynamodb, []) }, { store })
  const response = await first.app.inject(keyed)
  t.equal(response.statusCode, 201)
  t.equal(lost, 2, 'the reservation was sent twice, the first answer lost')
  t.equal(response.headers['idempotent-replayed'], undefined, 'the caller\'s own reservation: a new job')

  // Above them, the client sees the failure (strict AWS: the item comes with the failed condition).
  const c = clients(t, [], [{ command: 'PutItemCommand', when: 'after' }])
  const second = await awsApp(t, c)
  const failed = await second.app.inject({ ...keyed, url: '/job/reserved2?open=1' })
  t.equal(failed.statusCode, 503)
  t.equal(c.dynamoFaults.injected.get('PutItemCommand'), 1, 'the reservation was written, its answer failed')
  const retry = await second.app.inject({ ...keyed, url: '/job/reserved2?open=1' })
  t.equal(retry.statusCode, 201, 'the retry creates the job under the reservation')
  t.equal(second.runs.get('reserved2'), 1)
})

t.test('a reservation that expires between its refused write and its read answers 503', async t => {
  const c = clients(t)
  const store = dynamoDbStore({ tableName: emulators.tableName, client: c.dynamodb })
  const reservation = { key: `expiring-${Date.now()}`, jobId: newJobId(), fingerprint: 'f', expiresAt: Date.now() + 60_000 }
  await store.reserveKey(reservation)
  // Every read of it finds it expired, as if its time ran out just after the write was refused.
  addMiddleware(c.dynamodb, (next, context) => async (args) => {
    const result = await next(args) as { output: { Item?: Record<string, { N?: string }> } }
    if (context.commandName === 'GetItemCommand' && result.output.Item?.exp !== undefined) result.output.Item.exp = { N: '0' }
    return result
  })
  await t.rejects(store.reserveKey({ ...reservation, jobId: newJobId() }), { code: 'FST_LONG_RUNNING_BACKEND', detail: /expired while being read/ })
})

t.test('a key whose expiry could not follow its result keeps its first expiry; the result is stored all the same', async t => {
  const c = clients(t)
  let refused = 0
  addMiddleware(c.dynamodb, (next, context) => async (args) => {
    if (context.commandName === 'UpdateItemCommand' && String(args.input.Key?.id?.S).startsWith('k#')) {
      refused++
      throw Object.assign(new Error('injected InternalServerError'), { name: 'InternalServerError', $metadata: { httpStatusCode: 500 } })
    }
    return await next(args)
  })
  const warned: string[] = []
  const onWarning = (warning: Error & { code?: string }): void => { if (warning.code === 'FST_LONG_RUNNING_KEY_EXPIRY') warned.push(warning.message) }
  process.on('warning', onWarning)
  t.teardown(() => process.off('warning', onWarning))
  const clock = new FakeClock()
  const store = dynamoDbStore({ tableName: emulators.tableName, client: c.dynamodb, clock })
  const key = newJobId()
  const id = newJobId()
  await store.reserveKey({ key, jobId: id, fingerprint: 'fp', expiresAt: clock.now() + 86_400_000 })
  await store.create({ id, waitSeconds: 1, createdAt: clock.now(), expiresAt: clock.now() + 86_400_000, key })
  await store.claim(id, { owner: 'w', leaseUntil: clock.now() + 30_000, now: clock.now() })
  t.equal(await store.complete(id, 'w', { statusCode: 200, headers: {}, body: Buffer.from('kept') }, clock.now() + 1000), true, 'the completion holds')
  t.equal(refused, 1)
  await new Promise(resolve => setImmediate(resolve)) // warnings are emitted on the next tick
  t.match(warned, [new RegExp(`job ${id}: its idempotency key keeps its first expiry`)], 'and it is reported')
  await clock.advance(1000)
  t.equal((await store.reserveKey({ key, jobId: newJobId(), fingerprint: 'other', expiresAt: clock.now() + 60_000 })).jobId, id, 'the key keeps its first, longer expiry')
})
