import type { FastifyInstance } from 'fastify'
import { InvalidEventError } from '../errors.js'
import { changeVisibilityOf } from '../queue/sqs-queue.js'
import { describe } from '../validate.js'

/** The part of an SQS event record the consumer reads. */
export interface SqsRecord {
  messageId: string
  receiptHandle: string
  body: string
  eventSource: string
  attributes?: { ApproximateReceiveCount?: string }
}

/** An SQS event as Lambda's event source mapping delivers it. */
export interface SqsEvent {
  Records: SqsRecord[]
}

/** The part of the Lambda context the consumer reads. */
export interface LambdaContext {
  getRemainingTimeInMillis (): number
}

/** The partial batch response (`ReportBatchItemFailures`): the records that must come back. */
export interface SqsBatchResponse {
  batchItemFailures: Array<{ itemIdentifier: string }>
}

/**
 * A Lambda handler for the jobs queue's SQS events. It runs the batch's records concurrently
 * and answers `{ batchItemFailures }` with exactly the records that must come back; enable
 * `ReportBatchItemFailures` on the event source mapping.
 *
 * Each attempt may run until the function's deadline (`getRemainingTimeInMillis()`); one that
 * cannot finish in time is stopped a second before, its claim released and its record returned.
 * Records that can never run (not a job message, wrong version) are logged and dropped, never
 * failing their batch-mates and never retried until the DLQ.
 *
 * @example
 * // lambda.ts
 * const app = await buildApp() // registers fastify-long-running with sqsQueue and dynamoDbStore
 * export const worker = createSqsHandler(app)
 */
export function createSqsHandler (app: FastifyInstance): (event: SqsEvent, context: LambdaContext) => Promise<SqsBatchResponse> {
  return async (event, context) => {
    const records = checkEvent(event)
    if (typeof context?.getRemainingTimeInMillis !== 'function') {
      throw new InvalidEventError('a Lambda context without getRemainingTimeInMillis()')
    }
    await app.ready()
    // On the plugin's clock, as every other time it keeps: a test's fake clock reaches it too.
    const deadline = app.longRunning.clock.now() + context.getRemainingTimeInMillis()
    const failures = await Promise.all(records.map(async (record): Promise<string | undefined> => {
      // Never rejects: a delivery that failed comes back with the queue's redelivery back-off.
      const disposition = await app.longRunning.handle({
        body: record.body,
        receiveCount: Number(record.attributes?.ApproximateReceiveCount ?? 1),
        // The claim lasts until the deadline: nothing to extend while the function lives.
        extend: async () => {}
      }, { deadline })
      if (disposition.ack) return undefined
      // The event source mapping leaves a failed record hidden for the queue's whole
      // visibility timeout (6× the function's); bring it back when it can actually run.
      await changeVisibilityOf(app.longRunning.queue, record.receiptHandle, disposition.delaySeconds)
        .catch((error: unknown) => app.log.warn({ err: error, messageId: record.messageId }, 'visibility not changed'))
      return record.messageId
    }))
    return { batchItemFailures: failures.flatMap(id => id === undefined ? [] : [{ itemIdentifier: id }]) }
  }
}

/** Refuses anything that is not an SQS batch, rather than guessing what it might be. */
function checkEvent (event: unknown): SqsRecord[] {
  const records = (event as { Records?: unknown } | null)?.Records
  if (!Array.isArray(records)) throw new InvalidEventError(describe(event))
  for (const record of records) {
    const ok = typeof record === 'object' && record !== null && record.eventSource === 'aws:sqs' &&
      typeof record.messageId === 'string' && typeof record.receiptHandle === 'string' && typeof record.body === 'string'
    if (!ok) throw new InvalidEventError(`a record that is not from SQS: ${describe(record)}`)
  }
  return records as SqsRecord[]
}
