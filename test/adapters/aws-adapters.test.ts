import { randomBytes } from 'node:crypto'
import { BatchWriteItemCommand, GetItemCommand, PutItemCommand, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb'
import { ChangeMessageVisibilityCommand, CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs'
import t from 'tap'
import { emulatorClients, startEmulators } from '../../example/emulators.js'
import { dynamoDbStore } from '../../src/store/dynamodb-store.js'
import { sqsQueue } from '../../src/queue/sqs-queue.js'
import { newJobId } from '../../src/core/job-id.js'
import { queueContract, storeContract } from '../../src/testing/index.js'
import { itemBytes, strictDynamoDb, strictSqs } from '../helpers/strict-aws.js'

// The same contract suites as the in-memory adapters, over the real AWS SDK against the
// emulators that this test starts on free ports, through the strict-AWS layer: AWS's own
// limits, which the emulators do not enforce, applied on the clients.
const emulators = await startEmulators()
t.teardown(() => emulators.close())
const strict = emulatorClients(emulators.env)
strictSqs(strict.sqs, 64 * 1024)
strictDynamoDb(strict.dynamodb)
t.teardown(() => { strict.sqs.destroy(); strict.dynamodb.destroy() })

t.test('DynamoDB store', async t => {
  // Chunk items are keyed `{id}#…`: count what a job left in the table besides its own item.
  const count = async (id: string): Promise<number> => {
    let found = 0
    let start: Record<string, AttributeValue> | undefined
    do { // a Scan reads 1 MB per page: follow every page
      const page = await emulators.dynamodb.send(new ScanCommand({
        TableName: emulators.tableName,
        FilterExpression: 'begins_with(#id, :prefix)',
        ExpressionAttributeNames: { '#id': 'id' },
        ExpressionAttributeValues: { ':prefix': { S: `${id}#` } },
        ProjectionExpression: '#id',
        ExclusiveStartKey: start
      }))
      found += page.Items?.length ?? 0
      start = page.LastEvaluatedKey
    } while (start !== undefined)
    return found
  }
  t.type(dynamoDbStore({ tableName: emulators.tableName }).getMany, 'function', 'it offers getMany (the shared poller\'s batched read)')
  storeContract(t, async clock => dynamoDbStore({ tableName: emulators.tableName, client: strict.dynamodb, clock }), { count, outOfLine: true })
})

t.test('DynamoDB: the job item that waiters poll and workers update stays under one 4 KB read unit', async t => {
  const store = dynamoDbStore({ tableName: emulators.tableName, client: strict.dynamodb })
  const raw = async (id: string): Promise<Record<string, AttributeValue>> =>
    (await emulators.dynamodb.send(new GetItemCommand({ TableName: emulators.tableName, Key: { id: { S: id } }, ConsistentRead: true }))).Item ?? {}
  const id = newJobId()
  const body = randomBytes(300 * 1024)
  const headers = { 'content-type': 'application/octet-stream', 'x-long': 'h'.repeat(8000) }
  await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: Date.now() + 60_000, binding: 'b'.repeat(43), request: { method: 'POST', url: '/echo', headers, body } })
  const sizes = [itemBytes(await raw(id))]
  const claim = await store.claim(id, { owner: 'w', leaseUntil: Date.now() + 30_000, now: Date.now() })
  t.ok(claim.claimed && claim.request?.body?.equals(body) && claim.request.headers['x-long'] === headers['x-long'], 'the request comes back whole')
  await store.setProgress(id, 'w', { fraction: 0.5, message: 'm'.repeat(1000) })
  sizes.push(itemBytes(await raw(id)))
  await store.complete(id, 'w', { statusCode: 201, headers: { ...headers, 'set-cookie': ['a=1', 'b=2'] }, body }, Date.now() + 60_000)
  sizes.push(itemBytes(await raw(id)))
  t.ok(sizes.every(size => size <= 4096), `pending, running, done: ${sizes.join(', ')} bytes`)
  t.ok((await store.get(id))?.response?.body.equals(body), 'the response comes back whole')
})

t.test('SQS queue', async t => {
  let n = 0
  queueContract(t, async () => {
    // A queue per test, so that no test sees another's messages.
    const { QueueUrl } = await emulators.sqs.send(new CreateQueueCommand({ QueueName: `contract-${n++}`, Attributes: { MaximumMessageSize: String(64 * 1024) } }))
    return sqsQueue({ queueUrl: QueueUrl as string, client: strict.sqs, maxMessageBytes: 64 * 1024, retryDelaySeconds: 0, receiveBatchSize: 1 })
  })
})

t.test('the strict-AWS layer refuses what AWS refuses, where the emulators would accept it', async t => {
  const { QueueUrl } = await emulators.sqs.send(new CreateQueueCommand({ QueueName: 'strict-self-test' }))
  await t.rejects(strict.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'a\uFFFFb' })), { name: 'InvalidMessageContents' })
  await t.rejects(strict.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x'.repeat(64 * 1024 + 1) })), { name: 'InvalidParameterValue' })
  await t.rejects(strict.sqs.send(new SendMessageCommand({ QueueUrl: `${QueueUrl as string}.fifo`, MessageBody: 'x' })), { name: 'MissingParameter' })
  await strict.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'fine' }))
  const { Messages = [] } = await strict.sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1 }))
  const receipt = Messages[0]?.ReceiptHandle as string
  await strict.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl, ReceiptHandle: receipt, VisibilityTimeout: 43_000 }))
  await t.rejects(strict.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl, ReceiptHandle: receipt, VisibilityTimeout: 43_201 })), { name: 'InvalidParameterValue' }, '12 hours from receipt')
  const puts = Array.from({ length: 26 }, (_, i) => ({ PutRequest: { Item: { id: { S: `strict-${i}` } } } }))
  await t.rejects(strict.dynamodb.send(new BatchWriteItemCommand({ RequestItems: { [emulators.tableName]: puts } })), { name: 'ValidationException' })
  await t.rejects(strict.dynamodb.send(new PutItemCommand({ TableName: emulators.tableName, Item: { id: { S: 'big' }, data: { B: Buffer.alloc(400 * 1024) } } })), { name: 'ValidationException' })
})
