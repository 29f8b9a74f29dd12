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
  storeContract(t, async () => dynamoDbStore({ tableName: emulators.tableName, client: emulators.dynamodb }))
})

t.test('SQS queue', async t => {
  let n = 0
  queueContract(t, async () => {
    // A queue per test, so that no test sees another's messages.
    const { QueueUrl } = await emulators.sqs.send(new CreateQueueCommand({ QueueName: `contract-${n++}`, Attributes: { MaximumMessageSize: String(64 * 1024) } }))
    return sqsQueue({ queueUrl: QueueUrl as string, client: emulators.sqs, maxMessageBytes: 64 * 1024, retryDelaySeconds: 0, receiveBatchSize: 1 })
  })
})
