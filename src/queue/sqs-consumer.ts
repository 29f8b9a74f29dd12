import type { Message, SQSClient } from '@aws-sdk/client-sqs'
import type { LazyAwsClient } from '../aws-client.js'
import { sleep, type Clock } from '../clock.js'
import { backoffs, type Backoff } from '../retry.js'
import type { ConsumeOptions, Consumer, Delivery, Disposition } from './queue.js'

export const loadSdk = async () => await import('@aws-sdk/client-sqs')
export type Sdk = Awaited<ReturnType<typeof loadSdk>>

/** What the consumer needs of its queue: the calls on a received message, and its settings. */
export interface SqsConsumerQueue {
  readonly queueUrl: string
  readonly aws: LazyAwsClient<Sdk, SQSClient>
  readonly redelivery: Backoff
  readonly clock: Clock
  /** Seconds a received message stays hidden before the job's lease renewals extend it. */
  readonly visibilitySeconds: number
  /** Most messages one `ReceiveMessage` asks for. */
  readonly batch: number
  changeVisibility (receiptHandle: string, seconds: number): Promise<void>
  deleteMessage (receiptHandle: string): Promise<void>
}

/**
 * The container worker of an SQS queue (`SqsQueue.consume`): long polls that receive only into
 * free slots, each message handled and then deleted or handed back with its delay.
 */
export class SqsConsumer implements Consumer {
  readonly #queue: SqsConsumerQueue
  readonly #handler: (delivery: Delivery) => Promise<Disposition>
  readonly #options: ConsumeOptions
  readonly #stopping = new AbortController()
  readonly #inFlight = new Set<Promise<void>>()
  /** Pollers waiting for a free slot; woken together whenever a job ends. */
  #waiting: Array<() => void> = []
  /** Slots asked for by a receive under way: several pollers must not ask for the same ones. */
  #asked = 0
  readonly #polling: Promise<unknown>

  constructor (queue: SqsConsumerQueue, handler: (delivery: Delivery) => Promise<Disposition>, options: ConsumeOptions) {
    this.#queue = queue
    this.#handler = handler
    this.#options = options
    // Several long polls at once when one batch cannot fill the slots: a single poll loop would
    // cap throughput at one round trip per batch.
    const pollers = Math.min(10, Math.ceil(options.concurrency / queue.batch))
    this.#polling = Promise.all(Array.from({ length: pollers }, async () => await this.#poll()))
  }

  // Own properties, not methods: callers may take them off the consumer (`const { stop } = …`).
  readonly stop = async (): Promise<void> => {
    this.#stopping.abort()
    this.freed()
    await this.#polling
    await Promise.all(this.#inFlight)
  }

  /** A slot is free again: the pollers waiting for one go on. */
  readonly freed = (): void => {
    const woken = this.#waiting
    this.#waiting = []
    for (const resolve of woken) resolve()
  }

  #free (): number {
    return this.#options.concurrency - this.#inFlight.size - this.#asked - (this.#options.busyElsewhere?.() ?? 0)
  }

  async #poll (): Promise<void> {
    for (let failures = 0; !this.#stopping.signal.aborted;) {
      if (this.#free() <= 0) {
        await new Promise<void>(resolve => this.#waiting.push(resolve))
        continue
      }
      // Counted at once, before any await: another poller must not ask for the same slots.
      const want = Math.min(this.#queue.batch, this.#free())
      this.#asked += want
      let received: Message[] | undefined
      try {
        received = await this.#receive(want)
      } finally {
        // In the same turn as the messages join `#inFlight` below: no poller sees them in neither.
        this.#asked -= want
      }
      if (received === undefined) {
        if (this.#stopping.signal.aborted) break
        await sleep(this.#queue.clock, backoffs.receive.delayMs(++failures))
        continue
      }
      failures = 0
      for (const message of received) {
        const running = this.#work(message).finally(() => {
          this.#inFlight.delete(running)
          this.freed()
        })
        this.#inFlight.add(running)
      }
    }
  }

  /** One long poll for `want` messages; undefined when it failed (or was cut short by `stop()`). */
  async #receive (want: number): Promise<Message[] | undefined> {
    const queue = this.#queue
    const { ReceiveMessageCommand } = await queue.aws.sdk()
    try {
      const result = await queue.aws.send(new ReceiveMessageCommand({
        QueueUrl: queue.queueUrl,
        MaxNumberOfMessages: want,
        WaitTimeSeconds: 20,
        VisibilityTimeout: queue.visibilitySeconds,
        // Both spellings: the newer name, and the older one that emulators still read.
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        AttributeNames: ['All']
      }), { abortSignal: this.#stopping.signal })
      return result.Messages ?? []
    } catch (error) {
      if (!this.#stopping.signal.aborted) this.#options.onError(error)
      return undefined
    }
  }

  async #work (message: Message): Promise<void> {
    const queue = this.#queue
    const receipt = message.ReceiptHandle as string
    const receiveCount = Number(message.Attributes?.ApproximateReceiveCount ?? 1)
    let disposition: Disposition
    try {
      disposition = await this.#handler({
        body: message.Body ?? '',
        receiveCount,
        extend: async seconds => await queue.changeVisibility(receipt, seconds)
      })
    } catch (error) {
      this.#options.onError(error)
      disposition = { ack: false, delaySeconds: queue.redelivery.delaySeconds(receiveCount) }
    }
    try {
      if (disposition.ack) await queue.deleteMessage(receipt)
      else await queue.changeVisibility(receipt, disposition.delaySeconds)
    } catch (error) {
      this.#options.onError(error)
    }
  }
}
