import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { LazyAwsClient } from '../aws-client.js'
import { requestBlob, requestOf, responseBlob, responseOf } from '../core/blob.js'
import { clockOption, type Clock } from '../clock.js'
import { JobExistsError } from '../errors.js'
import type { StoredResponse } from '../core/wire.js'
import { matching, optionNames, optionsObject } from '../validate.js'
import { CHUNK_ATTRIBUTES, chunkKeysOf, DynamoDbBodies, packBody, REQUEST_BODY, REQUEST_TAG, RESPONSE_BODY } from './dynamodb-bodies.js'
import { both, condition, CONDITIONS, sameMessage } from './dynamodb-conditions.js'
import {
  ATTR, newJobItem, numberValue, readNumber, readString, RECORD_ATTRIBUTES, recordOf, stringValue, ttlOf, type Item
} from './dynamodb-items.js'
import { deleteJobItem, expireKeyWithJob, reserveKey } from './dynamodb-keys.js'
import { DynamoDbTable, loadSdk, names, projection, type Sdk } from './dynamodb-table.js'
import type { JobProgress, JobRecord } from '../core/job-state.js'
import type { ClaimResult, JobClaim, KeyReservation, NewJob, JobStore } from './store.js'
import { isExpired, isForeignMessage, JobStatus } from '../core/job-state.js'

/** Options of {@link dynamoDbStore}. */
export interface DynamoDbStoreOptions {
  /** The table: partition key `id` (String), no sort key, TTL on `ttl`. */
  tableName: string
  /** A client of your own (region, retries, tracing). @default new DynamoDBClient({}) */
  client?: DynamoDBClient
  /**
   * The source of time for expiry (`:now` in every condition) and batch back-offs: pass the
   * plugin's `clock` when you pass one there, so that the store and the plugin agree on what now is.
   * @default the system clock
   */
  clock?: Clock
}

const DYNAMODB_STORE_OPTIONS = optionNames<DynamoDbStoreOptions>({ tableName: true, client: true, clock: true })

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
  const checked = optionsObject(options, 'dynamoDbStore options', DYNAMODB_STORE_OPTIONS, true, 'dynamoDbStore')
  const tableName = matching(checked.tableName, 'tableName', /^[A-Za-z0-9_.-]{3,255}$/, 'a DynamoDB table name')
  return new DynamoDbStore(tableName, checked.client, clockOption(checked.clock, 'clock'))
}

// Which writes may happen at which point of a job's timeline: see dynamodb-conditions.ts.
class DynamoDbStore implements JobStore {
  readonly #table: string
  readonly #aws: LazyAwsClient<Sdk, DynamoDBClient>
  readonly #db: DynamoDbTable
  readonly #bodies: DynamoDbBodies
  readonly #clock: Clock

  constructor (table: string, client: DynamoDBClient | undefined, clock: Clock) {
    this.#table = table
    this.#clock = clock
    this.#aws = new LazyAwsClient('DynamoDB', loadSdk, sdk => new sdk.DynamoDBClient({}), client)
    this.#db = new DynamoDbTable(table, this.#aws, clock)
    this.#bodies = new DynamoDbBodies(this.#db)
  }

  async create (job: NewJob): Promise<JobRecord> {
    const item = newJobItem(job)
    if (job.request !== undefined) {
      const packed = packBody(requestBlob(job.request))
      await this.#bodies.putChunks(job.id, REQUEST_TAG, packed, job.expiresAt)
      Object.assign(item, this.#bodies.attributes(packed, REQUEST_BODY))
    }
    const { PutItemCommand } = await this.#aws.sdk()
    const written = await this.#db.conditional(new PutItemCommand({
      TableName: this.#table,
      Item: item,
      ...condition(CONDITIONS.free, this.#clock.now())
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
      Key: { [ATTR.id]: stringValue(id) },
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

  async claim (id: string, claim: JobClaim): Promise<ClaimResult> {
    const { UpdateItemCommand } = await this.#aws.sdk()
    const when = condition(both(CONDITIONS.claimable, sameMessage(claim.messageDigest)), claim.now)
    const result = await this.#db.conditional(new UpdateItemCommand({
      TableName: this.#table,
      Key: { [ATTR.id]: stringValue(id) },
      UpdateExpression: 'SET #st = :running, #att = #att + :one, #own = :owner, #lease = :lease',
      ...when,
      ExpressionAttributeNames: { ...when.ExpressionAttributeNames, ...names(ATTR.attempt, ATTR.owner) },
      ExpressionAttributeValues: {
        ...when.ExpressionAttributeValues,
        ':one': numberValue(1),
        ':owner': stringValue(claim.owner),
        ':lease': numberValue(claim.leaseUntil)
      },
      ReturnValues: 'ALL_NEW',
      // The record comes with a failed condition: no second read to learn why.
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD'
    }))
    if (result.ok) return await this.#claimed(id, result.attributes as Item)
    const item = result.old ?? await this.#item(id)
    const record = item === undefined ? undefined : await this.#record(item)
    if (record === undefined) return { claimed: false }
    if (isForeignMessage(readString(item as Item, ATTR.messageDigest), claim.messageDigest)) return { claimed: false, mismatch: true }
    // The SDK retried a claim that had succeeded but whose answer was lost: the lease it finds
    // is this caller's own. Taking it as refused would cost the job a lease and an attempt.
    if (record.status === JobStatus.running && record.owner === claim.owner) return await this.#claimed(id, item as Item)
    return { claimed: false, record }
  }

  /** A claim's result, from the claimed item: its attempt, and the request when the store keeps it. */
  async #claimed (id: string, item: Item): Promise<ClaimResult> {
    const attempt = readNumber(item, ATTR.attempt) as number
    const blob = await this.#bodies.read(item, id, REQUEST_TAG, REQUEST_BODY)
    return blob === undefined ? { claimed: true, attempt } : { claimed: true, attempt, request: requestOf(blob) }
  }

  async renew (id: string, owner: string, leaseUntil: number): Promise<boolean> {
    return (await this.#updateIf(id, { owner }, 'SET #lease = :lease', { ':lease': numberValue(leaseUntil) }, [ATTR.leaseUntil])).ok
  }

  async setProgress (id: string, owner: string, progress: JobProgress): Promise<boolean> {
    return (await this.#updateIf(id, { owner }, 'SET #prog = :prog', { ':prog': stringValue(JSON.stringify(progress)) }, [ATTR.progress])).ok
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
    await this.#bodies.putChunks(id, tag, packed, expiresAt)
    const set: Item = {
      [ATTR.status]: stringValue(JobStatus.done),
      [ATTR.expiresAt]: numberValue(expiresAt),
      [ATTR.ttl]: numberValue(ttlOf(expiresAt)),
      [ATTR.responseTag]: stringValue(tag),
      ...this.#bodies.attributes(packed, RESPONSE_BODY)
    }
    // The request goes, but its chunk count stays: `delete()` needs it to find the chunk items.
    const removed = [ATTR.owner, ATTR.leaseUntil, ATTR.request, ATTR.requestEncoding]
    const ended = await this.#updateIf(
      id,
      by,
      `SET ${Object.keys(set).map(name => `#${name} = :${name}`).join(', ')} REMOVE ${removed.map(name => `#${name}`).join(', ')}`,
      Object.fromEntries(Object.entries(set).map(([name, value]) => [`:${name}`, value])),
      [...Object.keys(set), ...removed],
      true
    )
    // The key lives as long as the result (the item names it): then the same key is a new request.
    if (ended.ok) await expireKeyWithJob(this.#db, ended.attributes, id, expiresAt)
    return ended.ok
  }

  /** The whole item, strongly consistent. */
  async #item (id: string): Promise<Item | undefined> {
    const { GetItemCommand } = await this.#aws.sdk()
    const { Item: item } = await this.#aws.send(new GetItemCommand({ TableName: this.#table, Key: { [ATTR.id]: stringValue(id) }, ConsistentRead: true }))
    return item
  }

  async delete (id: string): Promise<void> {
    const { GetItemCommand } = await this.#aws.sdk()
    const { Item: item } = await this.#aws.send(new GetItemCommand({
      TableName: this.#table,
      Key: { [ATTR.id]: stringValue(id) },
      ConsistentRead: true,
      ...projection([...CHUNK_ATTRIBUTES, ATTR.key])
    }))
    if (item === undefined) return
    await this.#db.batchWrite(chunkKeysOf(id, item).map(key => ({ DeleteRequest: { Key: { [ATTR.id]: stringValue(key) } } })))
    await deleteJobItem(this.#db, id, readString(item, ATTR.key))
  }

  async close (): Promise<void> {
    this.#aws.close()
  }

  /** The record of an item, its response assembled; undefined once expired. */
  async #record (item: Item): Promise<JobRecord | undefined> {
    const record = recordOf(item)
    if (readString(item, ATTR.status) === undefined || isExpired(record, this.#clock.now())) return undefined
    if (record.status === JobStatus.done) {
      const blob = await this.#bodies.read(item, record.id, readString(item, ATTR.responseTag) ?? '', RESPONSE_BODY)
      if (blob !== undefined) record.response = responseOf(blob)
    }
    return record
  }

  /**
   * A write that only the claim's owner may make (`by.owner`: `isOwnedBy`), or, without an
   * owner, anyone while the job is unfinished (`isCancellable`). `attributes` are the ones
   * `update` names as `#name`; with `returnItem`, the item as the write left it comes back.
   */
  async #updateIf (id: string, by: { owner?: string }, update: string, values: Item, attributes: string[], returnItem = false): Promise<{ ok: boolean, attributes?: Item }> {
    const { UpdateItemCommand } = await this.#aws.sdk()
    const when = condition(by.owner !== undefined ? CONDITIONS.owned : CONDITIONS.cancellable, this.#clock.now())
    const result = await this.#db.conditional(new UpdateItemCommand({
      TableName: this.#table,
      Key: { [ATTR.id]: stringValue(id) },
      UpdateExpression: update,
      ...when,
      ExpressionAttributeNames: { ...when.ExpressionAttributeNames, ...names(...attributes) },
      ExpressionAttributeValues: {
        ...values,
        ...when.ExpressionAttributeValues,
        ...(by.owner !== undefined ? { ':owner': stringValue(by.owner) } : {})
      },
      ...(returnItem ? { ReturnValues: 'ALL_NEW' } : {})
    }))
    return result
  }
}
