import { ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb'
import { CreateQueueCommand } from '@aws-sdk/client-sqs'
import t from 'tap'
import { startEmulators } from '../example/emulators.js'
import { dynamoDbStore } from '../src/store/dynamodb-store.js'
import { sqsQueue } from '../src/queue/sqs-queue.js'
import { queueContract } from './contracts/queue-contract.js'
import { storeContract } from './contracts/store-contract.js'

// The same contract suites as the in-memory adapters, over the real AWS SDK against the
// emulators that this test starts on free ports.
const emulators = await startEmulators()
t.teardown(() => emulators.close())

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
  storeContract(t, async () => dynamoDbStore({ tableName: emulators.tableName, client: emulators.dynamodb }), { count, outOfLine: true })
})

t.test('SQS queue', async t => {
  let n = 0
  queueContract(t, async () => {
    // A queue per test, so that no test sees another's messages.
    const { QueueUrl } = await emulators.sqs.send(new CreateQueueCommand({ QueueName: `contract-${n++}`, Attributes: { MaximumMessageSize: String(64 * 1024) } }))
    return sqsQueue({ queueUrl: QueueUrl as string, client: emulators.sqs, maxMessageBytes: 64 * 1024, retryDelaySeconds: 0, receiveBatchSize: 1 })
  })
})
