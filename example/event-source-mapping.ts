import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs'
import type { LambdaContext, SqsBatchResponse, SqsEvent, SqsRecord } from '../src/index.js'

/** What Lambda's SQS event source mapping needs to know, offline. */
export interface EventSourceMappingOptions {
  sqs: SQSClient
  queueUrl: string
  handler: (event: SqsEvent, context: LambdaContext) => Promise<SqsBatchResponse>
  /** Records per invocation. 1 by default: local-aws-sqs holds a poll open until the batch is full. */
  batchSize?: number
  /** The function's timeout: an invocation still running then fails its whole batch. @default 900 */
  functionTimeoutSeconds?: number
  /** Invocations at once. @default 5 */
  concurrency?: number
  onError?: (error: unknown) => void
}

/**
 * Feeds SQS batches to a Lambda handler the way the event source mapping does: long-poll,
 * invoke with an SQS event and a context whose clock runs out at the function timeout, delete
 * the records that succeeded, leave the `batchItemFailures` (and every record of a failed or
 * timed-out invocation) to come back after their visibility timeout.
 */
export function startEventSourceMapping (options: EventSourceMappingOptions): { stop: () => Promise<void> } {
  const stopping = new AbortController()
  const timeoutMs = (options.functionTimeoutSeconds ?? 900) * 1000
  const onError = options.onError ?? (() => {})

  const invoke = async (messages: Message[]): Promise<Set<string>> => {
    const deadline = Date.now() + timeoutMs
    const event: SqsEvent = { Records: messages.map(toRecord) }
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<undefined>(resolve => { timer = setTimeout(() => resolve(undefined), timeoutMs) })
    try {
      const result = await Promise.race([options.handler(event, { getRemainingTimeInMillis: () => deadline - Date.now() }), timedOut])
      if (result === undefined) throw new Error('Task timed out')
      return new Set(result.batchItemFailures.map(failure => failure.itemIdentifier))
    } catch (error) {
      onError(error)
      return new Set(messages.map(message => message.MessageId as string))
    } finally {
      clearTimeout(timer)
    }
  }

  const poll = async (): Promise<void> => {
    while (!stopping.signal.aborted) {
      let messages: Message[]
      try {
        const result = await options.sqs.send(new ReceiveMessageCommand({
          QueueUrl: options.queueUrl,
          MaxNumberOfMessages: options.batchSize ?? 1,
          WaitTimeSeconds: 20,
          AttributeNames: ['All']
        }), { abortSignal: stopping.signal })
        messages = result.Messages ?? []
      } catch (error) {
        if (!stopping.signal.aborted) onError(error)
        continue
      }
      if (messages.length === 0) continue
      const failed = await invoke(messages)
      const done = messages.filter(message => !failed.has(message.MessageId as string))
      if (done.length > 0) {
        await options.sqs.send(new DeleteMessageBatchCommand({
          QueueUrl: options.queueUrl,
          Entries: done.map((message, i) => ({ Id: String(i), ReceiptHandle: message.ReceiptHandle }))
        })).catch(onError)
      }
    }
  }

  for (let i = 0; i < (options.concurrency ?? 5); i++) void poll()
  return {
    // As when Lambda shuts its environments down: no more receives, and invocations still in
    // flight end with the process (their records come back after their visibility timeout).
    // Waiting for them made Ctrl-C take as long as the longest job.
    async stop () {
      stopping.abort()
    }
  }
}

function toRecord (message: Message): SqsRecord & Record<string, unknown> {
  return {
    messageId: message.MessageId as string,
    receiptHandle: message.ReceiptHandle as string,
    body: message.Body ?? '',
    attributes: { ApproximateReceiveCount: message.Attributes?.ApproximateReceiveCount ?? '1', ...message.Attributes },
    messageAttributes: {},
    md5OfBody: message.MD5OfBody,
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:jobs',
    awsRegion: 'us-east-1'
  }
}
