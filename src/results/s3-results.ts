import type { Readable } from 'node:stream'
import type { S3Client } from '@aws-sdk/client-s3'
import { LazyAwsClient } from '../aws-client.js'
import { clockOption, type Clock } from '../clock.js'
import type { ExternalBody, Headers, UploadedBody } from '../core/wire.js'
import { isJobId } from '../core/job-id.js'
import { BackendError, InvalidMessageError, UploadMissingError } from '../errors.js'
import { retries, withRetries } from '../retry.js'
import { matching, number, optionalBoolean, optionNames, optionsObject } from '../validate.js'
import { type BodyWriter, type ResultBodies, type UrlMethod } from './results.js'
import { MAX_PARTS, objectHeaders, partsOf, S3BodyWriter, type UploadCommand } from './s3-upload.js'

/** An uploaded request body's key: `{keyPrefix}{job id}/request`, beside the job's result bodies. */
const REQUEST_SUFFIX = '/request'

const loadSdk = async () => {
  const [s3, presigner] = await Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/s3-request-presigner')])
  return { ...s3, getSignedUrl: presigner.getSignedUrl }
}
type Sdk = Awaited<ReturnType<typeof loadSdk>>

/** Options of {@link s3Results}. */
export interface S3ResultsOptions {
  /** The bucket (`JOBS_RESULTS_BUCKET`). */
  bucket: string
  /** A client of your own (region, endpoint, retries). @default new S3Client({ forcePathStyle }) */
  client?: S3Client
  /** For the client made here: bucket in the path, not the host name (emulators). @default false */
  forcePathStyle?: boolean
  /** Prefix of every object's key, so that IAM policies and lifecycle rules can name them. @default 'results/' */
  keyPrefix?: string
  /** Bodies of at least this many bytes go to S3 even when the front end could return them. @default 4194304 */
  thresholdBytes?: number
  /** How long a URL handed to a client works, in seconds (SigV4 allows 7 days at most). @default 300 */
  urlTtlSeconds?: number
  /**
   * The days after which the bucket's lifecycle rule expires the objects under `keyPrefix`
   * (`example/template.yaml`: the `ResultTtlDays` parameter). The plugin then refuses a
   * `resultTtlSeconds` longer than these days less an hour: a result must never outlive its
   * body and answer with a URL of a deleted object. @default none (no lifecycle known, no check)
   */
  expireAfterDays?: number
  /** Bytes per part of a multipart upload: 5 MiB to 5 GiB, as S3 takes them. @default 8388608 */
  partBytes?: number
  /**
   * Request bodies over this many bytes stream to the bucket as they arrive, and back to the job's
   * replay, instead of being kept whole in its message or record (docs/uploads.md); `0`: no uploads.
   * @default 1048576
   */
  uploadThresholdBytes?: number
  /**
   * The source of time for the back-off between an upload's tries: the plugin's `clock`, if you pass one.
   * @default the system clock
   */
  clock?: Clock
}

// S3's multipart limits (Amazon S3 User Guide, "Amazon S3 multipart upload limits"): parts of
// 5 MiB to 5 GiB, the last one excepted, at most 10,000 of them; a presigned URL lives 7 days at most.
const MIN_PART = 5 * 1024 * 1024
const MAX_PART = 5 * 1024 ** 3
const MAX_URL_TTL = 7 * 86_400

const S3_RESULTS_OPTIONS = optionNames<S3ResultsOptions>({ bucket: true, client: true, forcePathStyle: true, keyPrefix: true, thresholdBytes: true, urlTtlSeconds: true, expireAfterDays: true, partBytes: true, uploadThresholdBytes: true, clock: true })

/**
 * Result bodies in Amazon S3, downloaded by the client through presigned URLs. The SDK
 * (`@aws-sdk/client-s3`, `@aws-sdk/s3-request-presigner`) is loaded on first use.
 *
 * @example
 * await app.register(longRunning, { queue, store, results: s3Results({ bucket: process.env.JOBS_RESULTS_BUCKET! }) })
 */
export function s3Results (options: S3ResultsOptions): ResultBodies {
  const checked = optionsObject(options, 's3Results options', S3_RESULTS_OPTIONS, true, 's3Results')
  return new S3Results({
    bucket: matching(checked.bucket, 'bucket', /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name'),
    keyPrefix: checked.keyPrefix === undefined ? 'results/' : matching(checked.keyPrefix, 'keyPrefix', /^[A-Za-z0-9!_.*'()/-]{0,512}$/, 'an S3 key prefix'),
    thresholdBytes: number(checked.thresholdBytes, 'thresholdBytes', 4 * 1024 * 1024, 1, 6 * 1024 * 1024, true),
    urlTtlSeconds: number(checked.urlTtlSeconds, 'urlTtlSeconds', 300, 1, MAX_URL_TTL, true),
    partBytes: number(checked.partBytes, 'partBytes', 8 * 1024 * 1024, MIN_PART, MAX_PART, true),
    expireAfterDays: checked.expireAfterDays === undefined ? undefined : number(checked.expireAfterDays, 'expireAfterDays', 0, 1, 36_500, true),
    uploadThresholdBytes: number(checked.uploadThresholdBytes, 'uploadThresholdBytes', 1024 * 1024, 0, Number.MAX_SAFE_INTEGER, true),
    clock: clockOption(checked.clock, 'clock')
  }, checked.client, optionalBoolean(checked.forcePathStyle, 'forcePathStyle') ?? false)
}

interface Settings { bucket: string, keyPrefix: string, thresholdBytes: number, urlTtlSeconds: number, partBytes: number, uploadThresholdBytes: number, expireAfterDays: number | undefined, clock: Clock }

/**
 * What a lifecycle of `days` leaves a result: S3 counts the days from the object's creation,
 * which comes before the job's completion (from which `resultTtlSeconds` counts), and rounds
 * up to the next midnight UTC; an hour less covers the gap between the two with room to spare.
 */
export function lifecycleResultTtl (days: number): number {
  return days * 86_400 - 3600
}

class S3Results implements ResultBodies {
  readonly thresholdBytes: number
  readonly maxResultTtlSeconds?: number
  readonly uploadThresholdBytes?: number
  readonly uploadBufferBytes?: number
  readonly #settings: Settings
  readonly #aws: LazyAwsClient<Sdk, S3Client>

  constructor (settings: Settings, client: S3Client | undefined, forcePathStyle: boolean) {
    this.#settings = settings
    this.thresholdBytes = settings.thresholdBytes
    if (settings.expireAfterDays !== undefined) this.maxResultTtlSeconds = lifecycleResultTtl(settings.expireAfterDays)
    if (settings.uploadThresholdBytes > 0) {
      this.uploadThresholdBytes = settings.uploadThresholdBytes
      // The part filling and the part being sent (see S3BodyWriter).
      this.uploadBufferBytes = 2 * MIN_PART
    }
    this.#aws = new LazyAwsClient('S3', loadSdk, sdk => new sdk.S3Client({ forcePathStyle }), client)
  }

  async put (id: string, owner: string, body: Buffer | readonly Buffer[], headers: Headers): Promise<ExternalBody> {
    const { bucket, keyPrefix } = this.#settings
    const key = `${keyPrefix}${id}/${owner}`
    const object = { Bucket: bucket, Key: key, ...objectHeaders(headers) }
    const chunks = Buffer.isBuffer(body) ? [body] : body
    const bytes = chunks.reduce((sum, chunk) => sum + chunk.length, 0)
    // Parts grow when a body would need more than S3's 10,000 of them.
    const partBytes = Math.max(this.#settings.partBytes, Math.ceil(bytes / MAX_PARTS))
    const sdk = await this.#aws.sdk()
    const parts = partsOf(chunks, partBytes)
    if (bytes <= partBytes) {
      const whole = parts.next().value ?? Buffer.alloc(0)
      await this.#retried(async () => await this.#aws.send(new sdk.PutObjectCommand({ ...object, Body: whole })))
      return { key, bytes }
    }
    const { UploadId } = await this.#retried(async () => await this.#aws.send(new sdk.CreateMultipartUploadCommand(object))) as { UploadId: string }
    try {
      const uploaded: Array<{ ETag: string, PartNumber: number }> = []
      // One part in memory besides the body: a copy only where it spans several chunks.
      for (const part of parts) {
        const number = uploaded.length + 1
        const { ETag } = await this.#retried(async () => await this.#aws.send(new sdk.UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: number, Body: part }))) as { ETag: string }
        uploaded.push({ ETag, PartNumber: number })
      }
      await this.#retried(async () => await this.#aws.send(new sdk.CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: uploaded } })))
    } catch (error) {
      // Parts of an upload never completed are billed until aborted (or a lifecycle rule does it).
      await this.#aws.send(new sdk.AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId })).catch(() => {})
      throw error
    }
    return { key, bytes }
  }

  async url (body: ExternalBody, method: UrlMethod = 'GET'): Promise<string> {
    const sdk = await this.#aws.sdk()
    const object = { Bucket: this.#settings.bucket, Key: body.key }
    // The method is part of what SigV4 signs: S3 refuses a GET URL used for HEAD (403).
    const command = method === 'HEAD' ? new sdk.HeadObjectCommand(object) : new sdk.GetObjectCommand(object)
    const client = await this.#aws.client()
    // Signed here, with no request: the URL carries the signer's rights for `urlTtlSeconds`, or
    // as long as the signer's credentials last, if shorter (S3 refuses the URL once they expire).
    // Resolving the credentials is a call to AWS too (STS, say): its failure is a backend's.
    try {
      const { expiration } = await client.config.credentials()
      return await sdk.getSignedUrl(client, command, { expiresIn: urlSeconds(this.#settings.urlTtlSeconds, expiration, this.#settings.clock.now()) })
    } catch (error) {
      throw new BackendError(`S3 presign ${method}: ${(error as Error).name}`, { cause: error })
    }
  }

  async delete (id: string): Promise<void> {
    const sdk = await this.#aws.sdk()
    const { bucket, keyPrefix } = this.#settings
    let token: string | undefined
    do {
      const page = await this.#aws.send(new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: `${keyPrefix}${id}/`, ContinuationToken: token })) as { Contents?: Array<{ Key: string }>, NextContinuationToken?: string }
      const keys = (page.Contents ?? []).map(({ Key }) => ({ Key }))
      if (keys.length > 0) await this.#aws.send(new sdk.DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }))
      token = page.NextContinuationToken
    } while (token !== undefined)
  }

  async close (): Promise<void> {
    this.#aws.close()
  }

  /** A request body of job `id`, kept beside its results (`{keyPrefix}{id}/request`: no attempt's owner is named so). */
  upload (id: string): BodyWriter {
    const { bucket, keyPrefix } = this.#settings
    const send = async (kind: UploadCommand, input: Record<string, unknown>): Promise<unknown> => {
      const sdk = await this.#aws.sdk()
      const Command = sdk[`${kind}Command`] as unknown as new (input: Record<string, unknown>) => object
      // Abort and delete are the clean-up of a failure already reported: tried once.
      if (kind === 'AbortMultipartUpload' || kind === 'DeleteObject') return await this.#aws.send(new Command(input))
      return await this.#retried(async () => await this.#aws.send(new Command(input)))
    }
    // S3's smallest parts: what an upload holds in the HTTP process is two of them.
    return new S3BodyWriter({ bucket, key: `${keyPrefix}${id}${REQUEST_SUFFIX}`, partBytes: MIN_PART, send })
  }

  async open (body: UploadedBody, signal?: AbortSignal): Promise<Readable> {
    this.#checkUploadKey(body.key)
    const sdk = await this.#aws.sdk()
    // The upload's object or none: another under its key is refused (412) before a byte is sent.
    // Gone for good (expired, removed, replaced), unlike an outage: no attempt could read it.
    const object = { Bucket: this.#settings.bucket, Key: body.key, ...(body.etag === undefined ? {} : { IfMatch: body.etag }) }
    const missing = (error: unknown): boolean => ['NoSuchKey', 'PreconditionFailed'].includes((error as { cause?: { name?: string } }).cause?.name as string)
    const { Body, ContentLength } = await this.#retried(async () => await this.#aws.send(new sdk.GetObjectCommand(object), signal === undefined ? {} : { abortSignal: signal }), error => !missing(error))
      .catch((error: unknown) => { throw missing(error) ? new UploadMissingError({ cause: error }) : error }) as { Body: Readable, ContentLength?: number }
    if (ContentLength !== undefined && ContentLength !== body.bytes) {
      Body.destroy()
      throw new BackendError(`S3 GetObject: ${body.key} has ${ContentLength} bytes, the request had ${body.bytes}`)
    }
    return Body
  }

  async discard (body: Pick<UploadedBody, 'key'>): Promise<void> {
    this.#checkUploadKey(body.key)
    const sdk = await this.#aws.sdk()
    await this.#aws.send(new sdk.DeleteObjectCommand({ Bucket: this.#settings.bucket, Key: body.key }))
  }

  /**
   * An upload's key is `{keyPrefix}{id}/request`: the job's id, or its creating request's (a key's
   * reservation may name another id). Anything else (a result body) is never read, nor removed.
   */
  #checkUploadKey (key: string): void {
    const { keyPrefix } = this.#settings
    const id = key.startsWith(keyPrefix) && key.endsWith(REQUEST_SUFFIX) ? key.slice(keyPrefix.length, -REQUEST_SUFFIX.length) : undefined
    if (!isJobId(id)) throw new InvalidMessageError(`${key} is not an uploaded request body`)
  }

  /** Each request tried again on its own (past the SDK's own retries): a 50 MiB upload is not started over for one part. */
  async #retried<T> (operation: () => Promise<T>, retryable?: (error: unknown) => boolean): Promise<T> {
    return await withRetries(operation, { ...retries.upload, clock: this.#settings.clock, onRetry: () => {}, ...(retryable === undefined ? {} : { retryable }) })
  }
}

/** Seconds before a URL's credentials expire at which it stops being offered: S3's clock may run ahead of ours. */
const EXPIRY_MARGIN_SECONDS = 10

/**
 * How long a URL signed now lives: `urlTtlSeconds`, cut to the credentials' expiration (less
 * the margin) when they have one (a role's session), and at least 1 s. The SDK renews
 * credentials 5 minutes before they expire, so only a credential provider of one's own that
 * hands out credentials about to expire makes it that short.
 */
export function urlSeconds (urlTtlSeconds: number, expiration: Date | undefined, now: number): number {
  if (expiration === undefined) return urlTtlSeconds
  const left = Math.floor((expiration.getTime() - now) / 1000) - EXPIRY_MARGIN_SECONDS
  return Math.max(1, Math.min(urlTtlSeconds, left))
}
