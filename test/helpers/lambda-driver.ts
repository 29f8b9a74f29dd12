import { DeleteMessageCommand, ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs'
import type { Emulators } from '../../example/emulators.js'
import type { SqsBatchResponse, SqsEvent } from '../../src/index.js'
import { lambdaContext, sqsEvent } from './events.js'

type Worker = (event: SqsEvent, context: ReturnType<typeof lambdaContext>) => Promise<SqsBatchResponse>

/** Drives a worker Lambda export as the event source mapping does, on the emulators' queue. */
export function lambdaDriver (emulators: Emulators, worker: Worker): {
  receive: (count: number) => Promise<Message[]>
  runBatch: (messages: Message[], context?: ReturnType<typeof lambdaContext>) => Promise<string[]>
} {
  return {
    /** Receives what the HTTP side queued, as the event source mapping would. */
    async receive (count) {
      const messages: Message[] = []
      while (messages.length < count) {
        const result = await emulators.sqs.send(new ReceiveMessageCommand({ QueueUrl: emulators.queueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 5, AttributeNames: ['All'] }))
        messages.push(...(result.Messages ?? []))
      }
      return messages
    },
    /** Runs one batch through `worker`, deleting what succeeded like the event source mapping. */
    async runBatch (messages, context = lambdaContext()) {
      const { batchItemFailures } = await worker(sqsEvent(messages), context)
      const failed = batchItemFailures.map(failure => failure.itemIdentifier)
      for (const message of messages) {
        if (!failed.includes(message.MessageId as string)) {
          await emulators.sqs.send(new DeleteMessageCommand({ QueueUrl: emulators.queueUrl, ReceiptHandle: message.ReceiptHandle }))
        }
      }
      return failed
    }
  }
}
