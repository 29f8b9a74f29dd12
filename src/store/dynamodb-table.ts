import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb'
import type { LazyAwsClient } from '../aws-client.js'
import { sleep, type Clock } from '../clock.js'
import { BackendError } from '../errors.js'
import { backoffs } from '../retry.js'

export const loadSdk = async () => await import('@aws-sdk/client-dynamodb')
export type Sdk = Awaited<ReturnType<typeof loadSdk>>

export type Item = Record<string, AttributeValue>

/**
 * Tries of one batch call's unprocessed items before it fails: about 3.5 s of back-off at the
 * most. Under sustained throttling a poll then fails (and the next one tries again) instead of
 * blocking every waiter, and a completion fails within its attempt's time.
 */
const MAX_BATCH_TRIES = 8

/**
 * The table's plumbing, below the store's job semantics: conditional writes that report a
 * failed condition as `{ ok: false }` (with the old item when the service returns it), and the
 * batch calls with their bounded unprocessed-item loops.
 */
export class DynamoDbTable {
  readonly name: string
  readonly aws: LazyAwsClient<Sdk, DynamoDBClient>
  /** The store's clock: its back-offs, and its expiry checks. */
  readonly clock: Clock

  constructor (name: string, aws: LazyAwsClient<Sdk, DynamoDBClient>, clock: Clock) {
    this.name = name
    this.aws = aws
    this.clock = clock
  }

  /**
   * Sends a conditional write. When its condition does not hold, `old` is the item as it was if
   * the command asked for it (`ReturnValuesOnConditionCheckFailure: 'ALL_OLD'`) and the service
   * returned it (DynamoDB does; dynalite does not).
   */
  async conditional (command: object): Promise<{ ok: true, attributes?: Item } | { ok: false, old?: Item }> {
    try {
      const result = await this.aws.send(command) as { Attributes?: Item }
      return result.Attributes === undefined ? { ok: true } : { ok: true, attributes: result.Attributes }
    } catch (error) {
      if (!isConditionFailure(error)) throw error
      const old = ((error as { cause?: { Item?: Item } }).cause)?.Item
      return old === undefined ? { ok: false } : { ok: false, old }
    }
  }

  async batchGet (keys: readonly string[], attributes: readonly string[]): Promise<Item[]> {
    const { BatchGetItemCommand } = await this.aws.sdk()
    const items: Item[] = []
    // BatchGetItem takes 100 keys and may leave some unprocessed under load: ask again for those.
    for (let start = 0; start < keys.length; start += 100) {
      let request: Record<string, { Keys: Item[], ConsistentRead: boolean } & ReturnType<typeof projection>> | undefined = {
        [this.name]: { Keys: keys.slice(start, start + 100).map(key => ({ id: { S: key } })), ConsistentRead: true, ...projection(attributes) }
      }
      for (let round = 0; request !== undefined && Object.keys(request).length > 0; round++) {
        if (round >= MAX_BATCH_TRIES) throw new BackendError(`DynamoDB BatchGetItem: keys left unprocessed after ${MAX_BATCH_TRIES} tries`)
        if (round > 0) await sleep(this.clock, backoffs.batch.delayMs(round))
        const result = await this.aws.send(new BatchGetItemCommand({ RequestItems: request }))
        items.push(...(result.Responses?.[this.name] ?? []))
        request = result.UnprocessedKeys as typeof request
      }
    }
    return items
  }

  async batchWrite (requests: Array<{ PutRequest?: { Item: Item }, DeleteRequest?: { Key: Item } }>): Promise<void> {
    if (requests.length === 0) return
    const { BatchWriteItemCommand } = await this.aws.sdk()
    // 25 requests per call, and at most 16 MB: 12 chunks of 380 KB stay well under.
    for (let start = 0; start < requests.length; start += 12) {
      let pending: Record<string, typeof requests> | undefined = { [this.name]: requests.slice(start, start + 12) }
      for (let round = 0; pending !== undefined && Object.keys(pending).length > 0; round++) {
        if (round >= MAX_BATCH_TRIES) throw new BackendError(`DynamoDB BatchWriteItem: items left unprocessed after ${MAX_BATCH_TRIES} tries`)
        if (round > 0) await sleep(this.clock, backoffs.batch.delayMs(round))
        const result = await this.aws.send(new BatchWriteItemCommand({ RequestItems: pending }))
        pending = result.UnprocessedItems as typeof pending
      }
    }
  }
}

/** Whether a (translated) SDK error is a failed `ConditionExpression`. */
function isConditionFailure (error: unknown): boolean {
  return error instanceof BackendError && (error.cause as { name?: string } | undefined)?.name === 'ConditionalCheckFailedException'
}

/** `#name` placeholders for attribute names (several, like `ttl`, are reserved words). */
export function names (...attributes: string[]): Record<string, string> {
  return Object.fromEntries(attributes.map(name => [`#${name}`, name]))
}

export function projection (attributes: readonly string[]): { ProjectionExpression: string, ExpressionAttributeNames: Record<string, string> } {
  return {
    ProjectionExpression: attributes.map((_, i) => `#p${i}`).join(', '),
    ExpressionAttributeNames: Object.fromEntries(attributes.map((name, i) => [`#p${i}`, name]))
  }
}
