import type { SQSClient } from '@aws-sdk/client-sqs'
import { LazyAwsClient } from '../aws-client.js'
import { clockOption, type Clock } from '../clock.js'
import { MessageTooLargeError } from '../errors.js'
import { redeliveryBackoff, type Backoff } from '../retry.js'
import { matching, number, optionNames, optionsObject } from '../validate.js'
import { sendDelay, type ConsumeOptions, type Consumer, type Delivery, type Disposition, type JobQueue, type SendOptions } from './queue.js'
import { loadSdk, SqsConsumer, type Sdk } from './sqs-consumer.js'

/** Options of {@link sqsQueue}. */
export interface SqsQueueOptions {
  /** The queue's URL (`JOBS_QUEUE_URL`). */
  queueUrl: string
  /** A client of your own (region, retries, tracing). @default new SQSClient({}) */
  client?: SQSClient
  /**
   * Largest message in bytes; set it to the queue's `MaximumMessageSize`. Larger requests travel
   * through the store (claim-check).
   * @default 262144
   */
  maxMessageBytes?: number
  /**
   * How long a message received by the container worker stays hidden before the job's lease
   * renewals extend it. Short, so that a worker that dies is replaced quickly.
   * @default 30
   */
  visibilityTimeoutSeconds?: number
  /**
   * Base of the back-off before a message whose handling failed (the store was down, say) comes
   * back: `retryDelaySeconds × 2^(receives − 1)`, at most 15 minutes. With the default and
   * `maxReceiveCount` 10, the receives before the dead-letter queue span about an hour: an outage
   * that long delays jobs and loses none. (The SDK has already retried brief errors itself.)
   * @default 15
   */
  retryDelaySeconds?: number
  /**
   * The redrive policy's `maxReceiveCount`: how many receives a message gets before SQS moves it
   * to the dead-letter queue. The back-off summed over those receives is how long an outage may
   * last before messages reach the dead-letter queue (`outageToleranceSeconds`).
   * @default 10
   */
  maxReceiveCount?: number
  /**
   * How long a message may still be delivered after it was sent, in seconds: the queue's
   * `MessageRetentionPeriod`, or the dead-letter queue's if you redrive from it (SQS keeps a
   * message's original enqueue time). Job records live at least this long.
   * @default 345600 (SQS's default retention, 4 days)
   */
  messageRetentionSeconds?: number
  /**
   * Most messages one `ReceiveMessage` of the container worker asks for (1 to 10).
   * @default 10
   */
  receiveBatchSize?: number
  /**
   * The source of time for the container worker's back-off after a failed receive: pass the
   * plugin's `clock` when you pass one there.
   * @default the system clock
   */
  clock?: Clock
}

/** The SQS queue adapter's extras, for the Lambda consumer. */
export interface SqsJobQueue extends JobQueue {
  readonly queueUrl: string
  readonly redelivery: Backoff
  readonly maxReceiveCount: number
  readonly deliveryWindowSeconds: number
  /** How long the store may fail before a message's receives run out: the back-off summed over `maxReceiveCount`. */
  readonly outageToleranceSeconds: number
  /** Hides a received message for `seconds` more (0: visible again now). */
  changeVisibility (receiptHandle: string, seconds: number): Promise<void>
}

const MAX_VISIBILITY = 43_200

const SQS_QUEUE_OPTIONS = optionNames<SqsQueueOptions>({ queueUrl: true, client: true, maxMessageBytes: true, visibilityTimeoutSeconds: true, retryDelaySeconds: true, maxReceiveCount: true, messageRetentionSeconds: true, receiveBatchSize: true, clock: true })

/**
 * The Amazon SQS queue: one `SendMessage` per job. Consumed by the Lambda handler
 * (`createSqsHandler`) or, in containers, by `consume()`: a long-polling worker that keeps the
 * messages it works on hidden and hands back the ones it cannot finish.
 * `@aws-sdk/client-sqs` is loaded on first use.
 *
 * @example
 * await app.register(longRunning, {
 *   queue: sqsQueue({ queueUrl: process.env.JOBS_QUEUE_URL! }),
 *   store: dynamoDbStore({ tableName: process.env.JOBS_TABLE! })
 * })
 */
export function sqsQueue (options: SqsQueueOptions): SqsJobQueue {
  const checked = optionsObject(options, 'sqsQueue options', SQS_QUEUE_OPTIONS, true, 'sqsQueue')
  // A FIFO queue needs a MessageGroupId on every send and delivers a group one message at a
  // time: every job would fail to queue, or wait behind the others. Standard queues only.
  const queueUrl = matching(checked.queueUrl, 'queueUrl', /^https?:\/\/\S+\/\S+(?<!\.fifo)$/, 'the URL of a standard SQS queue (FIFO queues are not supported)')
  return new SqsQueue(queueUrl, checked.client, {
    maxMessageBytes: number(checked.maxMessageBytes, 'maxMessageBytes', 256 * 1024, 1024, 1024 * 1024, true),
    visibility: number(checked.visibilityTimeoutSeconds, 'visibilityTimeoutSeconds', 30, 1, MAX_VISIBILITY, true),
    redelivery: redeliveryBackoff(number(checked.retryDelaySeconds, 'retryDelaySeconds', 15, 0, 900)),
    maxReceiveCount: number(checked.maxReceiveCount, 'maxReceiveCount', 10, 1, 1000, true),
    retention: number(checked.messageRetentionSeconds, 'messageRetentionSeconds', 345_600, 60, 1_209_600, true),
    batch: number(checked.receiveBatchSize, 'receiveBatchSize', 10, 1, 10, true),
    clock: clockOption(checked.clock, 'clock')
  })
}

class SqsQueue implements SqsJobQueue {
  readonly queueUrl: string
  readonly maxMessageBytes: number
  readonly redelivery: Backoff
  readonly maxReceiveCount: number
  readonly deliveryWindowSeconds: number
  readonly outageToleranceSeconds: number
  readonly #visibility: number
  readonly #batch: number
  readonly #clock: Clock
  readonly #aws: LazyAwsClient<Sdk, SQSClient>

  constructor (
    queueUrl: string,
    client: SQSClient | undefined,
    settings: { maxMessageBytes: number, visibility: number, redelivery: Backoff, batch: number, maxReceiveCount: number, retention: number, clock: Clock }
  ) {
    this.queueUrl = queueUrl
    this.#aws = new LazyAwsClient('SQS', loadSdk, sdk => new sdk.SQSClient({}), client)
    this.maxMessageBytes = settings.maxMessageBytes
    this.#visibility = settings.visibility
    this.redelivery = settings.redelivery
    this.maxReceiveCount = settings.maxReceiveCount
    this.deliveryWindowSeconds = settings.retention
    this.outageToleranceSeconds = Array.from({ length: settings.maxReceiveCount - 1 }, (_, i) => settings.redelivery.delaySeconds(i + 1))
      .reduce((sum, delay) => sum + delay, 0)
    this.#batch = settings.batch
    this.#clock = settings.clock
  }

  async send (body: string, options?: SendOptions): Promise<void> {
    const delay = sendDelay(options)
    const size = Buffer.byteLength(body)
    if (size > this.maxMessageBytes) throw new MessageTooLargeError(size, this.maxMessageBytes)
    const { SendMessageCommand } = await this.#aws.sdk()
    await this.#aws.send(new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: body, ...(delay === 0 ? {} : { DelaySeconds: delay }) }))
  }

  async changeVisibility (receiptHandle: string, seconds: number): Promise<void> {
    const { ChangeMessageVisibilityCommand } = await this.#aws.sdk()
    await this.#aws.send(new ChangeMessageVisibilityCommand({
      QueueUrl: this.queueUrl,
      ReceiptHandle: receiptHandle,
      VisibilityTimeout: Math.min(MAX_VISIBILITY, Math.max(0, Math.ceil(seconds)))
    }))
  }

  consume (handler: (delivery: Delivery) => Promise<Disposition>, options: ConsumeOptions): Consumer {
    return new SqsConsumer({
      queueUrl: this.queueUrl,
      aws: this.#aws,
      redelivery: this.redelivery,
      clock: this.#clock,
      visibilitySeconds: this.#visibility,
      batch: this.#batch,
      changeVisibility: async (receiptHandle, seconds) => await this.changeVisibility(receiptHandle, seconds),
      deleteMessage: async receiptHandle => await this.#delete(receiptHandle)
    }, handler, options)
  }

  async close (): Promise<void> {
    this.#aws.close()
  }

  async #delete (receiptHandle: string): Promise<void> {
    const { DeleteMessageCommand } = await this.#aws.sdk()
    await this.#aws.send(new DeleteMessageCommand({ QueueUrl: this.queueUrl, ReceiptHandle: receiptHandle }))
  }
}

/**
 * Makes a message that a consumer of its own received (the Lambda event source mapping) visible
 * again `seconds` from now, when `queue` is an SQS queue made by {@link sqsQueue}; any other
 * queue has no visibility to change, and this does nothing.
 */
export async function changeVisibilityOf (queue: JobQueue, receiptHandle: string, seconds: number): Promise<void> {
  if (queue instanceof SqsQueue) await queue.changeVisibility(receiptHandle, seconds)
}
