import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3'
import t from 'tap'
import { newJobId } from '../../src/core/job-id.js'
import { s3Results } from '../../src/results/s3-results.js'
import { resultsContract } from '../../src/testing/index.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { addMiddleware, injectFaults } from '../helpers/faults.js'
import { startS3 } from '../helpers/s3.js'
import { strictS3 } from '../helpers/strict-aws.js'

// Result bodies in S3, on the s3rver emulator through the strict-AWS layer (S3's part sizes).
const s3 = await startS3()
t.teardown(() => s3.close())
strictS3(s3.client)

t.test('S3 results', async t => {
  resultsContract(t, async () => s3Results({ bucket: s3.bucket, client: s3.client, partBytes: 5 * 1024 * 1024 }))
})

t.test('options are checked, naming the option', async t => {
  const cases: Array<[unknown, string]> = [
    [undefined, 'Expected `s3Results options` to be an object, got undefined'],
    [{ bucket: 'A_B' }, 'Expected `bucket` to be an S3 bucket name, got "A_B"'],
    [{ bucket: 'results', keyPrefix: 'a b' }, 'Expected `keyPrefix` to be an S3 key prefix, got "a b"'],
    [{ bucket: 'results', urlTtlSeconds: 604_801 }, 'Expected `urlTtlSeconds` to be an integer from 1 to 604800, got 604801'],
    [{ bucket: 'results', partBytes: 1024 }, 'Expected `partBytes` to be an integer from 5242880 to 5368709120, got 1024'],
    [{ bucket: 'results', thresholdBytes: 0 }, 'Expected `thresholdBytes` to be an integer from 1 to 6291456, got 0'],
    [{ bucket: 'results', uploadThresholdBytes: 1.5 }, 'Expected `uploadThresholdBytes` to be an integer from 0 to 9007199254740991, got 1.5']
  ]
  for (const [options, message] of cases) t.throws(() => s3Results(options as never), { code: 'FST_LONG_RUNNING_INVALID_OPTION', message })
})

t.test('a URL is scoped to its object and expires after urlTtlSeconds (the presigner\'s SigV4 parameters)', async t => {
  const results = s3Results({ bucket: s3.bucket, client: s3.client, urlTtlSeconds: 120, keyPrefix: 'jobs/' })
  const stored = await results.put(newJobId(), 'owner', Buffer.from('x'), {})
  const url = new URL(await results.url(stored))
  t.equal(url.pathname, `/${s3.bucket}/${stored.key}`)
  t.match(stored.key, /^jobs\/[0-9a-f-]{36}\/owner$/)
  t.equal(url.searchParams.get('X-Amz-Expires'), '120')
  t.equal(url.searchParams.get('X-Amz-Algorithm'), 'AWS4-HMAC-SHA256')
  t.equal(url.searchParams.get('X-Amz-SignedHeaders'), 'host', 'nothing but the host is signed: any client can use it')
  // S3 refuses a SigV4 URL after X-Amz-Date + X-Amz-Expires: that moment is urlTtlSeconds from now.
  const signed = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(url.searchParams.get('X-Amz-Date') ?? '')?.slice(1).map(Number) ?? []
  const [year = 0, month = 1, day = 0, hours = 0, minutes = 0, seconds = 0] = signed
  const expires = Date.UTC(year, month - 1, day, hours, minutes, seconds) + Number(url.searchParams.get('X-Amz-Expires')) * 1000
  t.ok(Math.abs(expires - (Date.now() + 120_000)) < 5000, 'refused by S3 from two minutes on')
})

t.test('a failed multipart upload leaves no object and no upload behind', async t => {
  const { client } = s3
  const faults = injectFaults(client, [{ command: 'CompleteMultipartUploadCommand', times: 3 }])
  const aborted: string[] = []
  addMiddleware(client, (next, context) => async (args) => {
    if (context.commandName === 'AbortMultipartUploadCommand') aborted.push(args.input.Key)
    return await next(args)
  })
  const results = s3Results({ bucket: s3.bucket, client, partBytes: 5 * 1024 * 1024 })
  const id = newJobId()
  await t.rejects(results.put(id, 'owner', Buffer.alloc(11 * 1024 * 1024, 1), {}), { code: 'FST_LONG_RUNNING_BACKEND' })
  t.equal(faults.injected.get('CompleteMultipartUploadCommand'), 3, 'tried three times')
  await t.rejects(client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `results/${id}/owner` })), { name: 'NotFound' })
  t.same(aborted, [`results/${id}/owner`], 'its parts aborted (s3rver has no ListMultipartUploads to check)')
})

t.test('a URL is signed for its method: HEAD gets one of its own; the strict layer refuses a GET URL used with HEAD, as S3 does', async t => {
  const results = s3Results({ bucket: s3.bucket, client: s3.client })
  const stored = await results.put(newJobId(), 'owner', Buffer.alloc(1234, 7), { 'content-type': 'text/csv' })
  const get = await results.url(stored)
  const head = await results.url(stored, 'HEAD')
  t.not(new URL(head).searchParams.get('X-Amz-Signature'), new URL(get).searchParams.get('X-Amz-Signature'), 'another signature')
  const headed = await fetch(head, { method: 'HEAD' })
  t.equal(headed.status, 200)
  t.equal(headed.headers.get('content-length'), '1234')
  t.equal(headed.headers.get('content-type'), 'text/csv')
  t.equal((await fetch(get)).status, 200, 'GET with the GET URL')
  for (const [url, method] of [[get, 'HEAD'], [head, 'GET']] as const) {
    const refused = await fetch(url, { method })
    t.equal(refused.status, 403, `a ${method} with a URL signed for the other method`)
    if (method === 'GET') t.match(await refused.text(), /<Code>SignatureDoesNotMatch<\/Code>/)
  }
  const tampered = new URL(get)
  tampered.searchParams.set('X-Amz-Expires', '604800')
  t.equal((await fetch(tampered)).status, 403, 'and any other part of the signed request changed')
})

t.test('a URL never outlives the credentials that signed it: urlTtlSeconds is cut to their expiration, less a margin', async t => {
  const clock = new FakeClock()
  let expiresInMs = 120_000
  // A role's session as the SDK's own `credentials` option takes it: a provider of credentials that expire.
  const client = new S3Client({
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: async () => ({ accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', sessionToken: 'session', expiration: new Date(clock.now() + expiresInMs) })
  })
  t.teardown(() => client.destroy())
  const expiresOf = async (urlTtlSeconds: number): Promise<string | null> => {
    const results = s3Results({ bucket: s3.bucket, client, urlTtlSeconds, clock })
    const stored = await results.put(newJobId(), 'owner', Buffer.from('x'), {})
    return new URL(await results.url(stored)).searchParams.get('X-Amz-Expires')
  }
  t.equal(await expiresOf(300), '110', 'the session ends in 120 s: the URL lives 110 s, not 300')
  t.equal(await expiresOf(60), '60', 'a shorter urlTtlSeconds stands')
  expiresInMs = 5_000
  t.equal(await expiresOf(300), '1', 'credentials about to expire: 1 s, the least')
  expiresInMs = 3_600_000
  t.equal(await expiresOf(300), '300')
  t.equal(await expiresOf(604_800), '3590', 'never past the session, whatever urlTtlSeconds says')
})

t.test('credentials that fail while a URL is signed are a backend failure (503, Retry-After), naming nothing of AWS to the client', async t => {
  const client = new S3Client({
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: async () => { throw Object.assign(new Error('User: arn:aws:sts::123456789012:assumed-role/jobs-http is not authorized'), { name: 'AccessDenied' }) }
  })
  t.teardown(() => client.destroy())
  const results = s3Results({ bucket: s3.bucket, client })
  const error = await results.url({ key: 'results/x/y', bytes: 1 }).catch((error: unknown) => error) as { code?: string, statusCode?: number, message?: string, headers?: Record<string, string>, detail?: string }
  t.match(error, { code: 'FST_LONG_RUNNING_BACKEND', statusCode: 503, headers: { 'retry-after': '1' }, detail: 'S3 presign GET: AccessDenied' })
  t.notMatch(error.message, /arn:|AccessDenied/)
})

t.test('uploads: a multipart upload whose completion S3 refuses rejects and is aborted, leaving no object', async t => {
  const { client } = s3
  const results = s3Results({ bucket: s3.bucket, client })
  const writer = results.upload?.(newJobId())
  if (writer === undefined) throw new Error('s3Results takes uploads')
  const aborted: string[] = []
  addMiddleware(client, (next, context) => async (args) => {
    if (context.commandName === 'AbortMultipartUploadCommand') aborted.push(args.input.Key)
    return await next(args)
  })
  await writer.write(Buffer.alloc(6 * 1024 * 1024, 2))
  const faults = injectFaults(client, [{ command: 'CompleteMultipartUploadCommand', times: 3 }])
  await t.rejects(writer.end(), { code: 'FST_LONG_RUNNING_BACKEND' })
  t.equal(faults.injected.get('CompleteMultipartUploadCommand'), 3, 'tried three times')
  t.same(aborted, [writer.key], 'aborted: its parts are not kept (billed)')
  await t.rejects(client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: writer.key })), { name: 'NotFound' })
})
