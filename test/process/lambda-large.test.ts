import { createHash } from 'node:crypto'
import type { Message } from '@aws-sdk/client-sqs'
import t from 'tap'
import { startEmulators } from '../../example/emulators.js'
import { albEvent, lambdaContext, restEvent } from '../helpers/events.js'
import { lambdaDriver } from '../helpers/lambda-driver.js'
import { pattern } from '../helpers/pattern.js'

// example/lambda.ts with JOBS_RESULTS_BUCKET (the SAM template sets it), driven as Lambda drives
// it, on the SQS, DynamoDB and S3 emulators: a result over what API Gateway or the ALB can
// return goes to S3, and the function answers a small 303 to it.
const emulators = await startEmulators({ visibilityTimeout: 120, s3: true })
t.teardown(() => emulators.close())
Object.assign(process.env, emulators.env, { WAIT_SECONDS: '0', LOG_LEVEL: 'silent' })
const { handler, worker } = await import('../../example/lambda.js')
const { receive, runBatch } = lambdaDriver(emulators, worker)

interface HttpResult { statusCode: number, headers: Record<string, string>, body: string }
const http = async (event: unknown): Promise<HttpResult> => await (handler as (e: unknown, c: unknown) => Promise<HttpResult>)(event, lambdaContext(30_000))

t.test('over the front end\'s limit, through S3: REST API (Lambda 6,291,556 bytes with base64) and ALB (1 MB)', async t => {
  for (const { event, size, limit } of [
    { event: restEvent, size: 5_242_880, limit: 6_291_556 },
    { event: restEvent, size: 52_428_800, limit: 6_291_556 },
    { event: albEvent, size: 900_000, limit: 1_000_000 },
    { event: albEvent, size: 52_428_800, limit: 1_000_000 }
  ]) {
    const what = `${event === albEvent ? 'ALB' : 'REST'} ${size} bytes`
    const accepted = await http(event({ method: 'GET', path: '/bytes', query: { size: String(size) } }))
    const [message] = await receive(1)
    t.same(await runBatch([message as Message]), [], `${what}: the job ends`)
    const [path = '', search = ''] = (accepted.headers.location ?? '').split('?')
    const result = await http(event({ method: 'GET', path: event === albEvent ? path : path.slice(5), query: Object.fromEntries(new URLSearchParams(search)) }))
    t.ok(Buffer.byteLength(JSON.stringify(result)) <= limit, `${what}: the answer fits the front end`)
    t.equal(result.statusCode, 303, what)
    t.equal(result.headers['x-long-running-status'], '200')
    const body = Buffer.from(await (await fetch(result.headers.location as string)).arrayBuffer())
    t.equal(body.length, size)
    t.ok(body.equals(pattern(size)), `${what}: byte for byte from S3`)
  }
})

t.test('issue 29: a 4 MiB multipart upload through the REST API (under Lambda\'s 6 MB invocation payload, base64 included) streams to S3 from the HTTP function and back to the worker\'s POST /upload', async t => {
  const file = Buffer.from(pattern(4 * 1024 * 1024).map((byte, i) => byte ^ (i >> 12)))
  const boundary = 'issue29boundary'
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="in.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    file,
    Buffer.from(`\r\n--${boundary}--\r\n`)
  ])
  const event = restEvent({ method: 'POST', path: '/upload', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body })
  t.ok(Buffer.byteLength(JSON.stringify(event)) <= 6_291_456, 'the event fits Lambda\'s invocation payload')
  const accepted = await http(event)
  t.equal(accepted.statusCode, 303)
  const [message] = await receive(1)
  t.match(JSON.parse((message as Message).Body as string).request, { upload: { key: /^results\/.+\/request$/, bytes: body.length } }, 'the message names the uploaded body, not its bytes')
  t.same(await runBatch([message as Message]), [])
  const [path = '', search = ''] = (accepted.headers.location ?? '').split('?')
  const result = await http(restEvent({ method: 'GET', path: path.slice(5), query: Object.fromEntries(new URLSearchParams(search)) }))
  t.equal(result.statusCode, 200)
  t.same(JSON.parse(result.body), { files: [{ field: 'file', filename: 'in.bin', bytes: file.length, sha256: createHash('sha256').update(file).digest('hex') }], fields: { note: 'hello' } })
})
