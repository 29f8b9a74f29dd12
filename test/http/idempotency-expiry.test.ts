import { CreateQueueCommand } from '@aws-sdk/client-sqs'
import t, { type Test } from 'tap'
import { emulatorClients, startEmulators } from '../../example/emulators.js'
import { dynamoDbStore, sqsQueue, type LongRunningOptions } from '../../src/index.js'
import { buildTestApp, closeTestApp, type TestApp } from '../helpers/app.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { strictDynamoDb, strictSqs } from '../helpers/strict-aws.js'

// Issue 24, point 6: an Idempotency-Key expires with its job's result, on both backends, over
// real HTTP. Before, a key lived as long as its job's first expiry (on SQS the queue's retention
// and more): a reused key got 422 days after its result of a minute had gone.
const emulators = await startEmulators()
t.teardown(() => emulators.close())

const RESULT_TTL_SECONDS = 60

async function post (test: TestApp, key: string, body: string): Promise<{ status: number, body: string, replayed: string | null }> {
  const response = await fetch(`${test.url}/job/pay?open=1`, { method: 'POST', body, headers: { 'content-type': 'text/plain', 'idempotency-key': key } })
  return { status: response.status, body: await response.text(), replayed: response.headers.get('idempotent-replayed') }
}

async function keysExpireWithResults (t: Test, clock: FakeClock, backends: LongRunningOptions): Promise<void> {
  const test = await buildTestApp({ waitSeconds: 5, resultTtlSeconds: RESULT_TTL_SECONDS, clock, ...backends })
  t.teardown(() => closeTestApp(test))
  await test.listen()
  for (const key of ['same-body', 'other-body']) t.match(await post(test, key, 'amount=10'), { status: 201, body: 'amount=10', replayed: null })
  t.equal(test.runs.get('pay'), 2)

  t.match(await post(test, 'same-body', 'amount=10'), { status: 201, body: 'amount=10', replayed: 'true' }, 'while the result lives: the stored answer')
  t.equal((await post(test, 'other-body', 'amount=99')).status, 422, 'while the result lives: another request with the key is refused')
  t.equal(test.runs.get('pay'), 2)

  await clock.advance(RESULT_TTL_SECONDS * 1000)
  t.match(await post(test, 'other-body', 'amount=99'), { status: 201, body: 'amount=99', replayed: null }, 'once it expired: another body is a new request, not a 422')
  t.match(await post(test, 'same-body', 'amount=10'), { status: 201, body: 'amount=10', replayed: null }, 'once it expired: the same body runs again')
  t.equal(test.runs.get('pay'), 4)
  t.match(await post(test, 'other-body', 'amount=99'), { status: 201, replayed: 'true' }, 'and the key holds the new job')
}

t.test('embedded default: a key expires with its result', async t => {
  await keysExpireWithResults(t, new FakeClock(), {})
})

t.test('SQS and DynamoDB emulators: a key expires with its result, not with the queue\'s retention', async t => {
  // Polls of DynamoDB run on the fake clock: they pass at once, moving it by their delay.
  const clock = new FakeClock({ autoAdvanceUpToMs: 1000 })
  const { sqs, dynamodb } = emulatorClients(emulators.env)
  t.teardown(() => { sqs.destroy(); dynamodb.destroy() })
  strictSqs(sqs)
  strictDynamoDb(dynamodb)
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'key-expiry' }))
  await keysExpireWithResults(t, clock, {
    queue: sqsQueue({ queueUrl: QueueUrl as string, client: sqs, receiveBatchSize: 1, clock }),
    store: dynamoDbStore({ tableName: emulators.tableName, client: dynamodb, clock }),
    consume: true
  })
})
