import { createHash, createHmac } from 'node:crypto'
import { createServer, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { GetItemCommand } from '@aws-sdk/client-dynamodb'
import { HeadObjectCommand } from '@aws-sdk/client-s3'
import { addMiddleware } from './faults.js'

// AWS's documented rules that the emulators skip, enforced on a real SDK client before (or
// after) its call reaches them: a result that passes only on an emulator fails here.

type Input = Record<string, any>

/** An error as the service would answer it: a 400 the SDK does not retry. */
function refuse (name: string, message: string): never {
  throw Object.assign(new Error(message), { name, $fault: 'client', $metadata: { httpStatusCode: 400 } })
}

// SendMessage: "#x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF".
const SQS_CHARACTERS = /^[\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u
// Visibility: "maximum is 12 hours", counted from the message's receipt however often extended.
const MAX_VISIBILITY = 43_200

/**
 * SQS (API Reference, Developer Guide): message size and characters, FIFO's MessageGroupId,
 * receive parameters, and the 12-hour visibility cap from receipt.
 */
export function strictSqs (client: { middlewareStack: { add: (middleware: any, options: any) => void } }, maxMessageBytes = 262_144): void {
  const receivedAt = new Map<string, number>()
  addMiddleware(client, (next, context) => async (args) => {
    const input: Input = args.input
    const now = Date.now()
    switch (context.commandName) {
      case 'SendMessageCommand':
        if (Buffer.byteLength(input.MessageBody) > maxMessageBytes) refuse('InvalidParameterValue', `Message must be shorter than ${maxMessageBytes} bytes`)
        if (!SQS_CHARACTERS.test(input.MessageBody)) refuse('InvalidMessageContents', 'Invalid characters found')
        if (String(input.QueueUrl).endsWith('.fifo') && input.MessageGroupId === undefined) refuse('MissingParameter', 'The request must contain the parameter MessageGroupId')
        break
      case 'ReceiveMessageCommand':
        if ((input.WaitTimeSeconds ?? 0) > 20 || (input.MaxNumberOfMessages ?? 1) > 10 || (input.VisibilityTimeout ?? 0) > MAX_VISIBILITY) {
          refuse('InvalidParameterValue', 'ReceiveMessage parameters out of range')
        }
        break
      case 'ChangeMessageVisibilityCommand': {
        const since = receivedAt.get(input.ReceiptHandle) ?? now
        if (input.VisibilityTimeout > MAX_VISIBILITY || (now - since) / 1000 + input.VisibilityTimeout > MAX_VISIBILITY) {
          refuse('InvalidParameterValue', `Total VisibilityTimeout for the message is beyond the limit [${MAX_VISIBILITY} seconds]`)
        }
        break
      }
    }
    const result = await next(args) as { output?: { Messages?: Array<{ ReceiptHandle?: string }> } }
    if (context.commandName === 'ReceiveMessageCommand') {
      for (const message of result.output?.Messages ?? []) if (message.ReceiptHandle !== undefined) receivedAt.set(message.ReceiptHandle, now)
    }
    return result
  })
}

/** DynamoDB's item size as it counts it: names and values, strings in UTF-8, binaries raw. */
export function itemBytes (item: Input): number {
  let size = 0
  for (const [name, value] of Object.entries(item)) {
    size += Buffer.byteLength(name)
    if (value.S !== undefined) size += Buffer.byteLength(value.S)
    else if (value.B !== undefined) size += value.B.length
    else if (value.N !== undefined) size += Math.ceil(String(value.N).replace(/^-|\.|^0+/g, '').length / 2) + 1
    else size += 1
  }
  return size
}

/**
 * DynamoDB (Developer Guide, API Reference): 400 KB items, 25 writes and 16 MB per
 * BatchWriteItem, 100 keys per BatchGetItem; a failed condition returns the item when
 * `ReturnValuesOnConditionCheckFailure` is `ALL_OLD`.
 */
export function strictDynamoDb (client: { middlewareStack: { add: (middleware: any, options: any) => void } }): void {
  addMiddleware(client, (next, context) => async (args) => {
    const input: Input = args.input
    const tooLarge = (item: Input): void => {
      if (itemBytes(item) > 400 * 1024) refuse('ValidationException', 'Item size has exceeded the maximum allowed size')
    }
    switch (context.commandName) {
      case 'PutItemCommand':
        tooLarge(input.Item)
        break
      case 'BatchWriteItemCommand': {
        const requests = Object.values(input.RequestItems as Record<string, Input[]>).flat()
        if (requests.length > 25) refuse('ValidationException', 'Too many items requested for the BatchWriteItem call')
        let total = 0
        for (const request of requests) {
          if (request.PutRequest !== undefined) {
            tooLarge(request.PutRequest.Item)
            total += itemBytes(request.PutRequest.Item)
          }
        }
        if (total > 16 * 1024 * 1024) refuse('ValidationException', 'Item collection size limit exceeded')
        break
      }
      case 'BatchGetItemCommand': {
        const keys = Object.values(input.RequestItems as Record<string, { Keys: unknown[] }>).reduce((sum, table) => sum + table.Keys.length, 0)
        if (keys > 100) refuse('ValidationException', 'Too many items requested for the BatchGetItem call')
        break
      }
    }
    try {
      return await next(args)
    } catch (error) {
      // DynamoDB returns the item with a failed condition when asked to (dynalite does not):
      // read as of a moment later, which is what a caller could see anyway.
      const wanted = input.ReturnValuesOnConditionCheckFailure === 'ALL_OLD' && (error as { name?: string }).name === 'ConditionalCheckFailedException'
      if (wanted && (error as { Item?: unknown }).Item === undefined) {
        const { Item } = await (client as unknown as { send: (command: unknown) => Promise<{ Item?: unknown }> })
          .send(new GetItemCommand({ TableName: input.TableName, Key: input.Key ?? { id: input.Item.id }, ConsistentRead: true }))
        if (Item !== undefined) Object.assign(error as object, { Item })
      }
      throw error
    }
  })
}

/**
 * S3 (User Guide, "Amazon S3 multipart upload limits"): parts of 5 MiB to 5 GiB but the last,
 * at most 10,000 parts, objects of one PutObject up to 5 GiB. The emulator accepts any part size.
 */
export function strictS3 (client: { middlewareStack: { add: (middleware: any, options: any) => void }, send: (command: any) => Promise<any> }): void {
  const parts = new Map<string, Map<number, number>>()
  addMiddleware(client, (next, context) => async (args) => {
    const input: Input = args.input
    const size = (body: unknown): number => Buffer.isBuffer(body) || body instanceof Uint8Array ? body.length : Buffer.byteLength(String(body ?? ''))
    switch (context.commandName) {
      case 'GetObjectCommand':
        // API Reference, GetObject: "Return the object only if its entity tag (ETag) is the same
        // as the one specified; otherwise, return a 412 Precondition Failed error." s3rver ignores
        // If-Match. A missing object stays S3's 404 NoSuchKey, which the GetObject itself gives.
        if (input.IfMatch !== undefined) {
          const head = await client.send(new HeadObjectCommand({ Bucket: input.Bucket, Key: input.Key })).catch(() => undefined) as { ETag?: string } | undefined
          if (head !== undefined && head.ETag !== input.IfMatch) {
            throw Object.assign(new Error('At least one of the pre-conditions you specified did not hold'), { name: 'PreconditionFailed', $fault: 'client', $metadata: { httpStatusCode: 412 } })
          }
        }
        break
      case 'PutObjectCommand':
        if (size(input.Body) > 5 * 1024 ** 3) refuse('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size')
        break
      case 'UploadPartCommand': {
        if (input.PartNumber < 1 || input.PartNumber > 10_000) refuse('InvalidArgument', 'Part number must be an integer between 1 and 10000')
        const upload = parts.get(input.UploadId) ?? new Map<number, number>()
        upload.set(input.PartNumber, size(input.Body))
        parts.set(input.UploadId, upload)
        break
      }
      case 'CompleteMultipartUploadCommand': {
        const sizes = [...(parts.get(input.UploadId) ?? new Map<number, number>())].sort(([a], [b]) => a - b).map(([, bytes]) => bytes)
        if (sizes.slice(0, -1).some(bytes => bytes < 5 * 1024 * 1024)) refuse('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size')
        break
      }
    }
    return await next(args)
  })
}

/** RFC 3986 encoding as SigV4 spells it: everything but `A-Za-z0-9-_.~`. */
const sigv4Encode = (value: string): string => encodeURIComponent(value).replace(/[!'()*]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data).digest()

/**
 * The SigV4 signature of a presigned URL (S3 API Reference, "Authenticating Requests: Using
 * Query Parameters") for a request made with `method`: the method is the canonical request's
 * first line, so a URL signed for one method carries a signature S3 refuses for another.
 */
export function presignedSignature (method: string, url: URL, headers: Record<string, string | string[] | undefined>, secretAccessKey: string): string {
  const query = [...url.searchParams].filter(([name]) => name !== 'X-Amz-Signature')
    .map(([name, value]) => `${sigv4Encode(name)}=${sigv4Encode(value)}`).sort().join('&')
  const signed = (url.searchParams.get('X-Amz-SignedHeaders') ?? '').split(';')
  const canonicalHeaders = signed.map(name => `${name}:${String(headers[name] ?? '').trim()}\n`).join('')
  const canonical = [method, url.pathname, query, canonicalHeaders, signed.join(';'), 'UNSIGNED-PAYLOAD'].join('\n')
  const [, date = '', region = '', service = ''] = (url.searchParams.get('X-Amz-Credential') ?? '').split('/')
  const toSign = ['AWS4-HMAC-SHA256', url.searchParams.get('X-Amz-Date'), `${date}/${region}/${service}/aws4_request`, createHash('sha256').update(canonical).digest('hex')].join('\n')
  const key = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, date), region), service), 'aws4_request')
  return createHmac('sha256', key).update(toSign).digest('hex')
}

/**
 * S3 checks a presigned URL's SigV4 signature against the request as made, its method
 * included; s3rver checks no SigV4 signature at all. A proxy in front of the emulator: a request
 * with a presigned URL whose signature does not match it gets S3's 403 `SignatureDoesNotMatch`,
 * everything else passes through unchanged (the `Host` header too, as signed).
 */
export async function strictS3Urls (target: string, secretAccessKey: string): Promise<{ endpoint: string, close: () => Promise<void> }> {
  const upstream = new URL(target)
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://proxy')
    const provided = url.searchParams.get('X-Amz-Signature')
    if (provided !== null && provided !== presignedSignature(request.method ?? 'GET', url, request.headers, secretAccessKey)) {
      const body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided. Check your key and signing method.</Message></Error>'
      response.writeHead(403, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) })
      response.end(request.method === 'HEAD' ? undefined : body)
      request.resume()
      return
    }
    const forwarded = httpRequest({ host: upstream.hostname, port: upstream.port, method: request.method, path: request.url, headers: request.headers }, answer => {
      response.writeHead(answer.statusCode ?? 502, answer.rawHeaders)
      answer.pipe(response)
    })
    forwarded.on('error', () => response.destroy())
    // A client that stops reading (a job's replay cut short) ends the upstream request too, as
    // S3 would: else s3rver waits for it at close.
    response.once('close', () => { if (!response.writableFinished) forwarded.destroy() })
    request.pipe(forwarded)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close () {
      server.closeAllConnections()
      await new Promise(resolve => server.close(resolve))
    }
  }
}
