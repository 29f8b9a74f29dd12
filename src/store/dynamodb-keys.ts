import { BackendError } from '../errors.js'
import { condition, CONDITIONS } from './dynamodb-conditions.js'
import { ATTR, numberValue, readNumber, readString, stringValue, ttlOf } from './dynamodb-items.js'
import { names, type DynamoDbTable, type Item } from './dynamodb-table.js'
import { isExpired } from '../core/job-state.js'
import { type KeyReservation } from './store.js'

/**
 * Idempotency keys as items of the job table: `k#{digest}`, which never collides with a job id
 * (a UUID has no `#`) nor a chunk item (`{uuid}#…`). One small item per key, written with one
 * conditional PutItem: a single-item write rather than a transaction with the job's item,
 * because DynamoDB bills a transaction's writes twice and the emulator has none. The
 * reservation comes first and names the job; `create`'s condition on the job's id does the rest.
 */
const KEY_ATTR = { job: 'job', fingerprint: 'fp' } as const

/** Reserves the key, or returns the live reservation that holds it (see `JobStore.reserveKey`). */
export async function reserveKey (db: DynamoDbTable, reservation: KeyReservation): Promise<KeyReservation> {
  const { PutItemCommand, GetItemCommand } = await db.aws.sdk()
  const id = `k#${reservation.key}`
  const item: Item = {
    [ATTR.id]: stringValue(id),
    [KEY_ATTR.job]: stringValue(reservation.jobId),
    [KEY_ATTR.fingerprint]: stringValue(reservation.fingerprint),
    [ATTR.expiresAt]: numberValue(reservation.expiresAt),
    [ATTR.ttl]: numberValue(ttlOf(reservation.expiresAt))
  }
  const written = await db.conditional(new PutItemCommand({
    TableName: db.name,
    Item: item,
    // An expired reservation is free again, whether or not TTL has deleted it yet.
    ...condition(CONDITIONS.free, db.clock.now()),
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD'
  }))
  if (written.ok) return reservation
  // An SDK retry of a write that went through finds the caller's own reservation: it holds.
  const old = written.old ?? (await db.aws.send(new GetItemCommand({ TableName: db.name, Key: { [ATTR.id]: stringValue(id) }, ConsistentRead: true }))).Item
  const held = old === undefined ? undefined : reservationOf(reservation.key, old)
  // Live when the write was refused, gone when read: it expired in between (nothing else removes
  // a reservation). Rare enough for a 503 that the client retries.
  if (held === undefined || isExpired(held, db.clock.now())) throw new BackendError('idempotency key reservation expired while being read')
  return held
}

/**
 * Once job `jobId` has ended (its item `job`, as the ending write left it), the key that names
 * it expires with its result: a second conditional write, on the key's item, if that still
 * names the job. Best effort: the result is stored already, and a failure here only leaves the
 * key its longer first expiry (until then the same key and request run the job again, another
 * request gets 422), reported as a process warning.
 */
export async function expireKeyWithJob (db: DynamoDbTable, job: Item | undefined, jobId: string, expiresAt: number): Promise<void> {
  const key = job === undefined ? undefined : readString(job, ATTR.key)
  if (key === undefined) return
  const { UpdateItemCommand } = await db.aws.sdk()
  try {
    await db.conditional(new UpdateItemCommand({
      TableName: db.name,
      Key: { [ATTR.id]: stringValue(`k#${key}`) },
      UpdateExpression: 'SET #exp = :exp, #ttl = :ttl',
      ConditionExpression: '#job = :job',
      ExpressionAttributeNames: names(ATTR.expiresAt, ATTR.ttl, KEY_ATTR.job),
      ExpressionAttributeValues: { ':exp': numberValue(expiresAt), ':ttl': numberValue(ttlOf(expiresAt)), ':job': stringValue(jobId) }
    }))
  } catch (error) {
    process.emitWarning(`job ${jobId}: its idempotency key keeps its first expiry (${String(error)})`, { code: 'FST_LONG_RUNNING_KEY_EXPIRY', detail: String((error as { detail?: unknown }).detail ?? '') })
  }
}

/**
 * Deletes job `jobId`'s item (its enqueue failed), and frees the idempotency key `key` (digest)
 * it was created with: a retry with the key is a new request. A keyed job's item becomes a
 * tombstone first, live for a minute but with no status (every read takes it as gone), so that a
 * request that found the key naming the job cannot create it again before the key's item goes;
 * a retried delete finds the key there. The key's item goes only if it still names the job.
 */
export async function deleteJobItem (db: DynamoDbTable, jobId: string, key: string | undefined): Promise<void> {
  const { PutItemCommand, DeleteItemCommand } = await db.aws.sdk()
  if (key === undefined) {
    await db.aws.send(new DeleteItemCommand({ TableName: db.name, Key: { [ATTR.id]: stringValue(jobId) } }))
    return
  }
  const expiresAt = db.clock.now() + 60_000
  await db.aws.send(new PutItemCommand({
    TableName: db.name,
    Item: { [ATTR.id]: stringValue(jobId), [ATTR.expiresAt]: numberValue(expiresAt), [ATTR.ttl]: numberValue(ttlOf(expiresAt)), [ATTR.key]: stringValue(key) }
  }))
  await db.conditional(new DeleteItemCommand({
    TableName: db.name,
    Key: { [ATTR.id]: stringValue(`k#${key}`) },
    ConditionExpression: '#job = :job',
    ExpressionAttributeNames: names(KEY_ATTR.job),
    ExpressionAttributeValues: { ':job': stringValue(jobId) }
  }))
}

function reservationOf (key: string, item: Item): KeyReservation {
  // Written by `reserveKey` alone, with every attribute.
  return { key, jobId: readString(item, KEY_ATTR.job) as string, fingerprint: readString(item, KEY_ATTR.fingerprint) as string, expiresAt: readNumber(item, ATTR.expiresAt) as number }
}
