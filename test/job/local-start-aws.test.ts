import { CreateQueueCommand } from '@aws-sdk/client-sqs'
import t, { type Test } from 'tap'
import { emulatorClients, startEmulators } from '../../example/emulators.js'
import { dynamoDbStore, sqsQueue, type LongRunningOptions } from '../../src/index.js'
import { decodeMessage } from '../../src/job/message.js'
import { buildTestApp, closeTestApp } from '../helpers/app.js'
import { addMiddleware } from '../helpers/faults.js'
import { strictDynamoDb, strictSqs } from '../helpers/strict-aws.js'

// A container that consumes its own SQS queue runs the jobs it accepts itself while it has
// slots free (src/job/local-start.ts). The logic, with its leases and delays, is tested on a
// shared memory queue and a fake clock (local-start.test.ts); here, what only SQS and DynamoDB
// decide: the item created claimed and the backup's whole-second DelaySeconds, as the real SDK
// clients send them to the emulators (every call recorded). Nothing here waits for a lease or
// a delay to pass.
const emulators = await startEmulators()
t.teardown(() => emulators.close())

interface Call { command: string, input: Record<string, any> }

/** Clients on the emulators that record each call that succeeded. */
function clients (t: Test) {
  const { sqs, dynamodb } = emulatorClients(emulators.env, { maxAttempts: 1 })
  t.teardown(() => { sqs.destroy(); dynamodb.destroy() })
  strictSqs(sqs)
  strictDynamoDb(dynamodb)
  const calls: Call[] = []
  for (const client of [sqs, dynamodb]) {
    addMiddleware(client, (next, context) => async (args) => {
      const result = await next(args)
      calls.push({ command: context.commandName, input: args.input })
      return result
    })
  }
  return { sqs, dynamodb, calls }
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

t.test('with a slot free, the job runs where it was accepted: created claimed, no claim, its backup sent delayed by the lease', async t => {
  const c = clients(t)
  const test = await container(t, c)
  test.gates.open('here')
  const response = await test.app.inject({ method: 'POST', url: '/job/here', payload: 'the body', headers: { 'content-type': 'text/plain' } })
  t.equal(response.statusCode, 201)
  t.equal(response.body, 'the body')
  const id = response.headers['x-job-id'] as string
  t.match(sends(c), [{ delaySeconds: 3, message: { id, backup: true, request: { method: 'POST' } } }], 'one message: the backup, invisible for the lease')
  t.same(writes(c).map(call => call.command), ['PutItemCommand', 'UpdateItemCommand'], 'two writes before the answer: created claimed, completed')
  t.match(writes(c)[0]?.input.Item, { st: { S: 'running' }, att: { N: '1' } })
})

t.test('SQS delays are whole seconds: a lease of 3.5 s delays the backup 4 s', async t => {
  const c = clients(t)
  const test = await container(t, c, { leaseSeconds: 3.5 })
  const response = await test.app.inject('/job/rounded?open=1')
  t.equal(response.statusCode, 201)
  t.match(sends(c), [{ delaySeconds: 4, message: { backup: true } }], 'accepted by SQS (the strict layer refuses a fraction, as SQS does)')
})
