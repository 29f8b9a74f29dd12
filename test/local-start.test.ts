import { CreateQueueCommand } from '@aws-sdk/client-sqs'
import t, { type Test } from 'tap'
import { emulatorClients, startEmulators } from '../example/emulators.js'
import { dynamoDbStore, sqsQueue, type LongRunningOptions } from '../src/index.js'
import { decodeMessage } from '../src/job/message.js'
import { buildTestApp, closeTestApp } from './helpers/app.js'
import { addMiddleware, injectFaults, type Fault } from './helpers/faults.js'
import { Gate } from './helpers/gate.js'
import { strictDynamoDb, strictSqs } from './helpers/strict-aws.js'

// A container that consumes its own SQS queue runs the jobs it accepts itself while it has
// slots free (src/job/local-start.ts): created claimed, a backup message delayed by the lease.
// Real SDK clients on the emulators, every call recorded; the clock is real, so that the SQS
// delays and the leases (3 s) pass as they would on AWS.
const emulators = await startEmulators()
t.teardown(() => emulators.close())

interface Call { command: string, input: Record<string, any> }

/** Clients on the emulators that record each call that succeeded, and fail the given ones. */
function clients (t: Test, sqsFaults: Fault[] = [], dynamoFaults: Fault[] = []) {
  const { sqs, dynamodb } = emulatorClients(emulators.env, { maxAttempts: 1 })
  t.teardown(() => { sqs.destroy(); dynamodb.destroy() })
  strictSqs(sqs)
  strictDynamoDb(dynamodb)
  const calls: Call[] = []
  const watchers = new Set<(call: Call) => void>()
  for (const client of [sqs, dynamodb]) {
    addMiddleware(client, (next, context) => async (args) => {
      const result = await next(args)
      const call = { command: context.commandName, input: args.input }
      calls.push(call)
      for (const watcher of watchers) watcher(call)
      return result
    })
  }
  return {
    sqs,
    dynamodb,
    calls,
    sqsFaults: injectFaults(sqs, sqsFaults),
    dynamoFaults: injectFaults(dynamodb, dynamoFaults),
    /** Resolves at the first call from now on that `match` accepts. */
    async next (match: (call: Call) => boolean): Promise<Call> {
      return await new Promise(resolve => {
        const watcher = (call: Call): void => {
          if (!match(call)) return
          watchers.delete(watcher)
          resolve(call)
        }
        watchers.add(watcher)
      })
    }
  }
}

let queues = 0

async function container (t: Test, c: ReturnType<typeof clients>, options: LongRunningOptions = {}) {
  const { QueueUrl: queueUrl } = await emulators.sqs.send(new CreateQueueCommand({ QueueName: `local-${queues++}` }))
  const test = await buildTestApp({
    queue: sqsQueue({ queueUrl: queueUrl as string, client: c.sqs, receiveBatchSize: 1, retryDelaySeconds: 0 }),
    store: dynamoDbStore({ tableName: emulators.tableName, client: c.dynamodb }),
    consume: true,
    waitSeconds: 30,
    leaseSeconds: 3,
    ...options
  })
  t.teardown(() => closeTestApp(test))
  return test
}

const sends = (c: ReturnType<typeof clients>) => c.calls.filter(call => call.command === 'SendMessageCommand')
  .map(call => ({ delaySeconds: call.input.DelaySeconds, message: decodeMessage(call.input.MessageBody) }))
const writes = (c: ReturnType<typeof clients>) => c.calls.filter(call => call.command === 'PutItemCommand' || call.command === 'UpdateItemCommand')

t.test('with a slot free, the job runs where it was accepted: created claimed, no claim, a backup dropped once the job is done', async t => {
  const c = clients(t)
  const test = await container(t, c)
  test.gates.open('here')
  const backupDone = c.next(call => call.command === 'DeleteMessageCommand')
  const response = await test.app.inject({ method: 'POST', url: '/job/here', payload: 'the body', headers: { 'content-type': 'text/plain' } })
  t.equal(response.statusCode, 201)
  t.equal(response.body, 'the body')
  const id = response.headers['x-job-id'] as string
  t.match(sends(c), [{ delaySeconds: 3, message: { id, backup: true, request: { method: 'POST' } } }], 'one message: the backup, invisible for the lease')
  t.same(writes(c).map(call => call.command), ['PutItemCommand', 'UpdateItemCommand'], 'two writes before the answer: created claimed, completed')
  t.match(writes(c)[0]?.input.Item, { st: { S: 'running' }, att: { N: '1' } })
  await backupDone
  t.equal(test.runs.get('here'), 1, 'the backup found the job done and was deleted')
  t.equal(sends(c).length, 1, 'and not sent again')
})

t.test('SQS delays are whole seconds: a lease of 3.5 s delays the backup 4 s, a back-off of 0.5 s delays the requeue 1 s', async t => {
  const c = clients(t, [], [{ command: 'UpdateItemCommand', times: 4, name: 'InternalServerError' }])
  const { QueueUrl: queueUrl } = await emulators.sqs.send(new CreateQueueCommand({ QueueName: `local-${queues++}` }))
  const test = await container(t, c, { leaseSeconds: 3.5, queue: sqsQueue({ queueUrl: queueUrl as string, client: c.sqs, receiveBatchSize: 1, retryDelaySeconds: 0.5 }) })
  // Its four tries at storing the result fail: the attempt goes back to the queue after the back-off.
  const requeued = c.next(call => call.command === 'SendMessageCommand' && call.input.DelaySeconds !== 4)
  const response = await test.app.inject('/job/rounded?open=1')
  t.equal(response.statusCode, 201, 'stored by the next attempt')
  t.match(sends(c)[0], { delaySeconds: 4, message: { backup: true } })
  const again = await requeued
  t.equal(again.input.DelaySeconds, 1)
  t.equal(decodeMessage(again.input.MessageBody).backup, undefined)
  t.equal(test.runs.get('rounded'), 2)
})

t.test('a backup that finds its job still running goes out again, delayed, without counting a receive', async t => {
  const c = clients(t)
  const test = await container(t, c)
  const pending = test.app.inject('/job/long')
  await test.ran('long')
  const rearmed = await c.next(call => call.command === 'SendMessageCommand')
  t.match(decodeMessage(rearmed.input.MessageBody), { backup: true })
  // What is left of the lease, rounded up: a renewal landing during the refused claim may add one second.
  t.ok(rearmed.input.DelaySeconds >= 1 && rearmed.input.DelaySeconds <= 4, `for what is left of the lease (${String(rearmed.input.DelaySeconds)} s)`)
  test.gates.open('long')
  t.equal((await pending).statusCode, 201)
  t.equal(test.runs.get('long'), 1)
})

t.test('with every slot taken, a job takes the queue', async t => {
  const c = clients(t)
  const test = await container(t, c, { concurrency: 1 })
  const first = test.app.inject('/job/first')
  await test.ran('first')
  const queued = c.next(call => call.command === 'SendMessageCommand')
  const second = test.app.inject('/job/second?open=1')
  const message = decodeMessage((await queued).input.MessageBody)
  t.equal(message.backup, undefined, 'sent at once, not as a backup')
  test.gates.open('first')
  for (const response of await Promise.all([first, second])) t.equal(response.statusCode, 201)
  t.same([test.runs.get('first'), test.runs.get('second')], [1, 1])
})

t.test('app.close() with a job running here: it goes to the queue at once, and another worker delivers it', async t => {
  const c = clients(t)
  // A long poll cut short at shutdown stays open at SQS until its 20 s are up and takes the next
  // message with it (aws/aws-sdk-js#2350; the emulator does the same): that message shows again
  // after the receive's visibility timeout, made short here.
  const { QueueUrl: queueUrl } = await emulators.sqs.send(new CreateQueueCommand({ QueueName: `local-${queues++}` }))
  const test = await container(t, c, { queue: sqsQueue({ queueUrl: queueUrl as string, client: c.sqs, receiveBatchSize: 1, visibilityTimeoutSeconds: 1 }) })
  const pending = test.app.inject('/job/moved')
  await test.ran('moved')
  const requeueFaults = injectFaults(c.sqs, [{ command: 'SendMessageCommand', name: 'ServiceUnavailable' }])
  const requeued = c.next(call => call.command === 'SendMessageCommand' && call.input.DelaySeconds === undefined)
  const closing = closeTestApp(test)
  t.equal((await pending).statusCode, 303, 'its client is told where to ask')
  const message = decodeMessage((await requeued).input.MessageBody)
  t.equal(message.backup, undefined, 'sent at once, not as a backup')
  t.equal(requeueFaults.injected.get('SendMessageCommand'), 1, 'on the second try')
  await closing
  const worker = await buildTestApp({ queue: sqsQueue({ queueUrl: queueUrl as string, client: c.sqs }), store: dynamoDbStore({ tableName: emulators.tableName, client: c.dynamodb }), consume: true })
  t.teardown(() => closeTestApp(worker))
  worker.gates.open('moved')
  const response = await worker.app.inject(`/async-response/${message.id}`)
  t.equal(response.statusCode, 201)
  t.equal(worker.runs.get('moved'), 1)
})

t.test('a job accepted as the app closes never starts here: its claim is released and it goes to the queue at once', async t => {
  const c = clients(t)
  // Longer than the test's timeout: a request that waited for its job would fail the test.
  const test = await container(t, c, { waitSeconds: 900 })
  const created = new Gate()
  const held = new Gate()
  addMiddleware(c.dynamodb, (next, context) => async (args) => {
    if (context.commandName !== 'PutItemCommand') return await next(args)
    held.open()
    await created.opened
    return await next(args)
  })
  const pending = test.app.inject('/job/late?open=1')
  await held.opened
  await closeTestApp(test)
  const requeued = c.next(call => call.command === 'SendMessageCommand' && call.input.DelaySeconds === undefined)
  created.open()
  const { id } = decodeMessage((await requeued).input.MessageBody)
  t.equal(test.runs.get('late'), undefined, 'not run here')
  t.match(await dynamoDbStore({ tableName: emulators.tableName, client: c.dynamodb }).get(id), { status: 'running', attempt: 1, leaseUntil: 0 }, 'the claim released')
  t.equal((await pending).statusCode, 303, 'its client is told where to ask at once, not after waitSeconds')
})

t.test('the backup cannot be sent: 503, no job left, the handler never ran', async t => {
  const c = clients(t, [{ command: 'SendMessageCommand', times: 3, name: 'ServiceUnavailable' }])
  const test = await container(t, c)
  const created = c.next(call => call.command === 'PutItemCommand')
  const response = await test.app.inject('/job/unsent?open=1')
  t.equal(response.statusCode, 503)
  t.equal(response.headers['retry-after'], '1')
  const id = (await created).input.Item.id.S as string
  t.equal(await test.app.longRunning.store.get(id), undefined, 'no phantom job')
  t.equal(test.runs.get('unsent'), undefined)
  t.equal(test.app.longRunning.stats().running, 0)
})

t.test('the record cannot be created: 503, the handler never ran, and the backup finds no job', async t => {
  const c = clients(t, [], [{ command: 'PutItemCommand', name: 'InternalServerError' }])
  const test = await container(t, c)
  const dropped = c.next(call => call.command === 'DeleteMessageCommand')
  const response = await test.app.inject('/job/uncreated?open=1')
  t.equal(response.statusCode, 503)
  t.equal(test.runs.get('uncreated'), undefined)
  await dropped
  t.equal(test.runs.get('uncreated'), undefined, 'the backup of a job never created is dropped')
})

t.test('a job with an idempotency key takes the queue', async t => {
  const c = clients(t)
  const test = await container(t, c)
  const response = await test.app.inject({ method: 'POST', url: '/job/keyed?open=1', payload: 'k', headers: { 'content-type': 'text/plain', 'idempotency-key': 'key-1' } })
  t.equal(response.statusCode, 201)
  t.match(sends(c), [{ delaySeconds: undefined, message: { backup: undefined } }])
})
