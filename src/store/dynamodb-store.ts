import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { LazyAwsClient } from '../aws-client.js'
import { requestBlob, requestOf, responseBlob, responseOf } from '../core/blob.js'
import { BackendError, JobExistsError } from '../errors.js'
import type { StoredResponse } from '../core/wire.js'
import { matching, optionsObject } from '../validate.js'
import {
  A, b, bytes, chunkKey, chunkKeys, n, num, packBody, RECORD_ATTRIBUTES, recordOf, s, str,
  ttlOf, unpackBody, type Item, type PackedBody
} from './dynamodb-items.js'
import { reserveKey } from './dynamodb-keys.js'
import { DynamoDbTable, loadSdk, names, projection, type Sdk } from './dynamodb-table.js'
import type { JobProgress, JobRecord } from '../core/job-state.js'
import type { ClaimResult, KeyReservation, NewJob, JobStore } from './store.js'
import { isExpired, JobStatus } from '../core/job-state.js'

/** Options of {@link dynamoDbStore}. */
export interface DynamoDbStoreOptions {
  /** The table: partition key `id` (String), no sort key, TTL on `ttl`. */
  tableName: string
  /** A client of your own (region, retries, tracing). @default new DynamoDBClient({}) */
  client?: DynamoDBClient
}

/**
 * The DynamoDB result store. One table holds everything, large results too (compressed, then
 * chunked beyond 300 KB, up to 6 MiB). Every write that can race is conditional; reads that
 * decide anything are strongly consistent. `@aws-sdk/client-dynamodb` is loaded on first use.
 *
 * @example
 * await app.register(longRunning, {
 *   queue: sqsQueue({ queueUrl: process.env.JOBS_QUEUE_URL! }),
 *   store: dynamoDbStore({ tableName: process.env.JOBS_TABLE! })
 * })
 */
export function dynamoDbStore (options: DynamoDbStoreOptions): JobStore {
  const checked = optionsObject(options, 'dynamoDbStore options', true)
  const tableName = matching(checked.tableName, 'tableName', /^[A-Za-z0-9_.-]{3,255}$/, 'a DynamoDB table name')
  return new DynamoDbStore(tableName, checked.client)
}

// Each condition below names who may write, at which point of a job's timeline:
//   create ──► pending ──claim──► running(owner, lease) ──complete(owner)──► done
//                 │                 │  ▲                                      ▲
//                 │   lease lapsed  └──┘ claim by the next attempt (attempt + 1)
//                 └───────────── cancel (anyone, while not done) ─────────────┘
// Attribute names go through `#name` placeholders: several (`ttl`...) are reserved words.
// `isExpired` (store.ts) spelt as a condition, so that a write never revives an expired job.
const LIVE = '#exp > :now'
const CLAIMABLE = `attribute_exists(#id) AND ${LIVE} AND (#st = :pending OR (#st = :running AND #lease < :now))`
const OWNED = '#st = :running AND #own = :owner'
const UNFINISHED = 'attribute_exists(#id) AND #st <> :done'

class DynamoDbStore implements JobStore {
  readonly #table: string
  readonly #aws: LazyAwsClient<Sdk, DynamoDBClient>
  readonly #db: DynamoDbTable

  constructor (table: string, client: DynamoDBClient | undefined) {
    this.#table = table
    this.#aws = new LazyAwsClient('DynamoDB', loadSdk, sdk => new sdk.DynamoDBClient({}), client)
    this.#db = new DynamoDbTable(table, this.#aws)
  }

  async create (job: NewJob): Promise<JobRecord> {
    const item: Item = {
      [A.id]: s(job.id),
      [A.status]: s(JobStatus.pending),
      [A.attempt]: n(0),
      [A.waitSeconds]: n(job.waitSeconds),
      [A.createdAt]: n(job.createdAt),
      [A.expiresAt]: n(job.expiresAt),
      [A.ttl]: n(ttlOf(job.expiresAt))
    }
    if (job.binding !== undefined) item[A.binding] = s(job.binding)
    if (job.claim !== undefined) {
      Object.assign(item, { [A.status]: s(JobStatus.running), [A.attempt]: n(1), [A.owner]: s(job.claim.owner), [A.leaseUntil]: n(job.claim.leaseUntil) })
    }
    if (job.request !== undefined) {
      const packed = packBody(requestBlob(job.request))
      await this.#putChunks(job.id, 'q', packed, job.expiresAt)
      Object.assign(item, this.#bodyAttributes(packed, A.request, A.requestChunks, A.requestEncoding))
    }
    const { PutItemCommand } = await this.#aws.sdk()
    const written = await this.#db.conditional(new PutItemCommand({
      TableName: this.#table,
      Item: item,
      // An expired job is gone (`isExpired`) even while its item waits for TTL: an idempotency
      // key may create its job again under the same id.
      ConditionExpression: `attribute_not_exists(#id) OR NOT (${LIVE})`,
      ExpressionAttributeNames: names(A.id, A.expiresAt),
      ExpressionAttributeValues: { ':now': n(Date.now()) }
    }))
    if (!written.ok) throw new JobExistsError(job.id)
    return recordOf(item)
  }

  async reserveKey (reservation: KeyReservation): Promise<KeyReservation> {
    return await reserveKey(this.#db, reservation)
  }

  async get (id: string): Promise<JobRecord | undefined> {
    const { GetItemCommand } = await this.#aws.sdk()
    const { Item: item } = await this.#aws.send(new GetItemCommand({
      TableName: this.#table,
      Key: { [A.id]: s(id) },
      ConsistentRead: true,
      ...projection(RECORD_ATTRIBUTES)
    }))
    return item === undefined ? undefined : await this.#record(item)
  }

  async getMany (ids: readonly string[]): Promise<Map<string, JobRecord>> {
    const items = await this.#db.batchGet(ids, RECORD_ATTRIBUTES)
    const found = new Map<string, JobRecord>()
    for (const item of items) {
      const record = await this.#record(item)
      if (record !== undefined) found.set(record.id, record)
    }
    return found
  }

  async claim (id: string, claim: { owner: string, leaseUntil: number, now: number }): Promise<ClaimResult> {
    const { UpdateItemCommand } = await this.#aws.sdk()
    const result = await this.#db.conditional(new UpdateItemCommand({
      TableName: this.#table,
      Key: { [A.id]: s(id) },
      UpdateExpression: 'SET #st = :running, #att = #att + :one, #own = :owner, #lease = :lease',
      ConditionExpression: CLAIMABLE,
      ExpressionAttributeNames: names(A.id, A.status, A.attempt, A.owner, A.leaseUntil, A.expiresAt),
      ExpressionAttributeValues: {
        ':running': s(JobStatus.running),
        ':pending': s(JobStatus.pending),
        ':one': n(1),
        ':owner': s(claim.owner),
        ':lease': n(claim.leaseUntil),
        ':now': n(claim.now)
      },
      ReturnValues: 'ALL_NEW',
      // The record comes with a failed condition: no second read to learn why.
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD'
    }))
    if (result.ok) return await this.#claimed(id, result.attributes as Item)
    const item = result.old ?? await this.#item(id)
    const record = item === undefined ? undefined : await this.#record(item)
    if (record === undefined) return { claimed: false }
    // The SDK retried a claim that had succeeded but whose answer was lost: the lease it finds
    // is this caller's own. Taking it as refused would cost the job a lease and an attempt.
    if (record.status === JobStatus.running && record.owner === claim.owner) return await this.#claimed(id, item as Item)
    return { claimed: false, record }
  }

  /** A claim's result, from the claimed item: its attempt, and the request when the store keeps it. */
  async #claimed (id: string, item: Item): Promise<ClaimResult> {
    const attempt = num(item, A.attempt) as number
    const blob = await this.#body(item, id, 'q', A.request, A.requestChunks, A.requestEncoding)
    return blob === undefined ? { claimed: true, attempt } : { claimed: true, attempt, request: requestOf(blob) }
  }

  async renew (id: string, owner: string, leaseUntil: number): Promise<boolean> {
    return await this.#updateIf(id, { owner }, 'SET #lease = :lease', { ':lease': n(leaseUntil) }, [A.leaseUntil])
  }

  async setProgress (id: string, owner: string, progress: JobProgress): Promise<boolean> {
    return await this.#updateIf(id, { owner }, 'SET #prog = :prog', { ':prog': s(JSON.stringify(progress)) }, [A.progress])
  }

  async complete (id: string, owner: string, response: StoredResponse, expiresAt: number): Promise<boolean> {
    return await this.#end(id, response, expiresAt, { owner })
  }

  async cancel (id: string, response: StoredResponse, expiresAt: number): Promise<boolean> {
    return await this.#end(id, response, expiresAt, {})
  }

  /** Stores a final response: by the claim's owner (completion), or by anyone while unfinished (cancellation). */
  async #end (id: string, response: StoredResponse, expiresAt: number, by: { owner?: string }): Promise<boolean> {
    const packed = packBody(responseBlob(response))
    const tag = `r.${by.owner ?? 'cancel'}`
    // Chunks first, the state last: a reader that sees `done` finds every chunk in place.
    await this.#putChunks(id, tag, packed, expiresAt)
    const set: Item = {
      [A.status]: s(JobStatus.done),
      [A.expiresAt]: n(expiresAt),
      [A.ttl]: n(ttlOf(expiresAt)),
      [A.responseTag]: s(tag),
      ...this.#bodyAttributes(packed, A.response, A.responseChunks, A.responseEncoding)
    }
    // The request goes, but its chunk count stays: `delete()` needs it to find the chunk items.
    const removed = [A.owner, A.leaseUntil, A.request, A.requestEncoding]
    return await this.#updateIf(
      id,
      by,
      `SET ${Object.keys(set).map(name => `#${name} = :${name}`).join(', ')} REMOVE ${removed.map(name => `#${name}`).join(', ')}`,
      Object.fromEntries(Object.entries(set).map(([name, value]) => [`:${name}`, value])),
      [...Object.keys(set), ...removed]
    )
  }

  /** The whole item, strongly consistent. */
  async #item (id: string): Promise<Item | undefined> {
    const { GetItemCommand } = await this.#aws.sdk()
    const { Item: item } = await this.#aws.send(new GetItemCommand({ TableName: this.#table, Key: { [A.id]: s(id) }, ConsistentRead: true }))
    return item
  }

  async delete (id: string): Promise<void> {
    const { GetItemCommand, DeleteItemCommand } = await this.#aws.sdk()
    const { Item: item } = await this.#aws.send(new GetItemCommand({
      TableName: this.#table,
      Key: { [A.id]: s(id) },
      ConsistentRead: true,
      ...projection([A.requestChunks, A.responseChunks, A.responseTag])
    }))
    if (item === undefined) return
    const keys = [
      ...chunkKeys(id, 'q', num(item, A.requestChunks)),
      ...chunkKeys(id, str(item, A.responseTag) ?? '', num(item, A.responseChunks))
    ]
    await this.#db.batchWrite(keys.map(key => ({ DeleteRequest: { Key: { [A.id]: s(key) } } })))
    await this.#aws.send(new DeleteItemCommand({ TableName: this.#table, Key: { [A.id]: s(id) } }))
  }

  async close (): Promise<void> {
    this.#aws.close()
  }

  /** The record of an item, its response assembled; undefined once expired. */
  async #record (item: Item): Promise<JobRecord | undefined> {
    const record = recordOf(item)
    if (isExpired(record)) return undefined
    if (record.status === JobStatus.done) {
      const blob = await this.#body(item, record.id, str(item, A.responseTag) ?? '', A.response, A.responseChunks, A.responseEncoding)
      if (blob !== undefined) record.response = responseOf(blob)
    }
    return record
  }

  #bodyAttributes (packed: PackedBody, inline: string, chunks: string, encoding: string): Item {
    return packed.inline !== undefined
      ? { [inline]: b(packed.inline), [encoding]: s(packed.encoding) }
      : { [chunks]: n(packed.chunks?.length ?? 0), [encoding]: s(packed.encoding) }
  }

  async #body (item: Item, id: string, tag: string, inline: string, chunks: string, encoding: string): Promise<Buffer | undefined> {
    const count = num(item, chunks)
    let data = bytes(item, inline)
    if (count !== undefined) {
      const keys = chunkKeys(id, tag, count)
      const parts = new Map((await this.#db.batchGet(keys, [A.id, 'data'])).map(part => [str(part, A.id), bytes(part, 'data')]))
      data = Buffer.concat(keys.map(key => {
        const part = parts.get(key)
        if (part === undefined) throw new BackendError(`chunk ${key} missing`)
        return part
      }))
    }
    return data === undefined ? undefined : unpackBody(data, str(item, encoding))
  }

  async #putChunks (id: string, tag: string, packed: PackedBody, expiresAt: number): Promise<void> {
    await this.#db.batchWrite((packed.chunks ?? []).map((data, index) => ({
      PutRequest: { Item: { [A.id]: s(chunkKey(id, tag, index)), data: b(data), [A.ttl]: n(ttlOf(expiresAt)) } }
    })))
  }

  /**
   * A write that only the claim's owner may make (`by.owner`), or, without an owner, anyone while
   * the job is unfinished. `attributes` are the ones `update` names as `#name`.
   */
  async #updateIf (id: string, by: { owner?: string }, update: string, values: Item, attributes: string[]): Promise<boolean> {
    const { UpdateItemCommand } = await this.#aws.sdk()
    const owned = by.owner !== undefined
    const result = await this.#db.conditional(new UpdateItemCommand({
      TableName: this.#table,
      Key: { [A.id]: s(id) },
      UpdateExpression: update,
      ConditionExpression: `${owned ? OWNED : UNFINISHED} AND ${LIVE}`,
      ExpressionAttributeNames: names(A.status, A.expiresAt, owned ? A.owner : A.id, ...attributes),
      ExpressionAttributeValues: {
        ...values,
        ':now': n(Date.now()),
        ...(owned ? { ':running': s(JobStatus.running), ':owner': s(by.owner as string) } : { ':done': s(JobStatus.done) })
      }
    }))
    return result.ok
  }
}
