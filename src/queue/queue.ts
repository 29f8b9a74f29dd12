import type { Backoff } from '../retry.js'
import { number } from '../validate.js'

/**
 * The job queue: carries job messages from the HTTP side to whatever runs them. Written for
 * SQS's semantics (at-least-once delivery, a bounded message size, redelivery after a visibility
 * timeout); the in-memory queue behaves the same way and both pass `queueContract` (`src/testing/`, shipped as `fastify-long-running/testing`).
 */

/** One delivery of a message to a consumer. */
export interface Delivery {
  /** The message body exactly as sent. */
  body: string
  /** How many times this message has been delivered, this time included (1 on the first). */
  receiveCount: number
  /** Keeps the message hidden from other consumers for `seconds` more, while it is worked on. */
  extend (seconds: number): Promise<void>
}

/**
 * What a consumer decides about a delivery: `ack` removes the message for good;
 * `retry` makes it visible again after `delaySeconds` for another delivery.
 */
export type Disposition = { ack: true } | { ack: false, delaySeconds: number }

/** A running consumer; `stop()` stops taking messages and waits for the ones in hand. */
export interface Consumer {
  stop (): Promise<void>
  /** A slot counted by `busyElsewhere` is free again: the consumer may receive into it now. */
  freed? (): void
}

/** Options of {@link JobQueue.consume}. */
export interface ConsumeOptions {
  /** Deliveries handled at once. */
  concurrency: number
  /** Called when the queue backend fails, so that the error is logged rather than lost. */
  onError (error: unknown): void
  /**
   * Slots of `concurrency` taken by jobs this process runs without a delivery in hand (started
   * where they were accepted): the consumer receives only into the rest. Call `freed()` when
   * one of them frees. A receive already under way may still bring what it asked for: at most
   * one batch beyond the concurrency. @default () => 0
   */
  busyElsewhere? (): number
}

/** Options of {@link JobQueue.send}. */
export interface SendOptions {
  /** Keeps the message invisible this long after sending, 0 to 900 seconds (SQS's `DelaySeconds`). @default 0 */
  delaySeconds?: number
}

/** The queue contract. */
export interface JobQueue {
  /** Largest message body `send` accepts, in bytes; larger requests travel through the store. */
  readonly maxMessageBytes: number

  /**
   * How long a message whose handling failed (the store was down, say) stays away, by receive
   * count. Whoever hands a failed delivery back (`consume()`, the Lambda consumer) uses it.
   * @default exponential from 1 s, at most 15 minutes
   */
  readonly redelivery?: Backoff

  /**
   * True when only this process can ever run what is sent here (the in-memory queue): at
   * `app.close()` the jobs it runs are then let finish (`closeGraceSeconds`) rather than handed
   * back to a queue that would die with the process.
   */
  readonly inProcess?: boolean

  /**
   * How long after it was sent a message may still be delivered, in seconds: the queue's
   * retention, or its dead-letter queue's when messages may be redriven from there. A job's
   * record lives at least this long, so that no delivery, however late, finds it gone.
   */
  readonly deliveryWindowSeconds?: number

  /**
   * Sends one message; rejects with `MessageTooLargeError` over `maxMessageBytes`. Resolves once
   * the queue has durably accepted it.
   */
  send (body: string, options?: SendOptions): Promise<void>

  /**
   * Starts delivering messages to `handler` in this process. A handler that throws counts as
   * `retry` after the queue's default delay. Queues consumed elsewhere (SQS through Lambda)
   * still offer this for container workers.
   */
  consume (handler: (delivery: Delivery) => Promise<Disposition>, options: ConsumeOptions): Consumer

  /** Messages waiting to be delivered, for a queue that knows at once (the in-memory one). */
  queued? (): number

  /** Releases timers and connections. */
  close? (): Promise<void>
}

/** SQS's most `DelaySeconds`. */
const MAX_SEND_DELAY_SECONDS = 900

/**
 * The delay to send for a wish of `seconds` (a lease, a back-off): whole seconds, rounded up, and
 * at most SQS's 15 minutes, as `send` takes it.
 */
export function sendableDelay (seconds: number): number {
  return Math.min(MAX_SEND_DELAY_SECONDS, Math.max(0, Math.ceil(seconds)))
}

/** The checked delay of a `send`, for every queue alike. */
export function sendDelay (options: SendOptions | undefined): number {
  return number(options?.delaySeconds, 'delaySeconds', 0, 0, MAX_SEND_DELAY_SECONDS, true)
}
