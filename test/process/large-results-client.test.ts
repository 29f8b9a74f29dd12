import { S3Client } from '@aws-sdk/client-s3'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { emulatorClients, startEmulators } from '../../example/emulators.js'
import { fetchLongRunning } from '../../src/client/index.js'
import longRunning, { dynamoDbStore, s3Results, sqsQueue } from '../../src/index.js'
import { pattern } from '../helpers/pattern.js'
import { strictDynamoDb, strictS3, strictSqs } from '../helpers/strict-aws.js'

// Issue 24, point 2: a result kept in S3 comes back from the client with the route's own status
// and headers, not S3's. To `Prefer: respond-async` the plugin describes it (202, the route's
// status and headers, the presigned URL); the client downloads the URL with a plain GET and
// builds the route's response. SQS, DynamoDB and S3 emulators, through the strict-AWS layer.
const emulators = await startEmulators({ s3: true })
t.teardown(() => emulators.close())
const { env } = emulators

const bytes = (size: number): Buffer => pattern(size, 7, 256)
const SIZE = 2 * 1024 * 1024 + 5

async function serve (t: Test): Promise<string> {
  const { sqs, dynamodb } = emulatorClients(env)
  const s3 = new S3Client({ region: env.AWS_REGION, endpoint: env.AWS_ENDPOINT_URL_S3, forcePathStyle: true, credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID as string, secretAccessKey: env.AWS_SECRET_ACCESS_KEY as string } })
  strictSqs(sqs)
  strictDynamoDb(dynamodb)
  strictS3(s3)
  const app = Fastify()
  t.teardown(async () => { await app.close(); sqs.destroy(); dynamodb.destroy(); s3.destroy() })
  await app.register(longRunning, {
    waitSeconds: 10,
    queue: sqsQueue({ queueUrl: emulators.queueUrl, client: sqs, receiveBatchSize: 1 }),
    store: dynamoDbStore({ tableName: emulators.tableName, client: dynamodb }),
    results: s3Results({ bucket: env.JOBS_RESULTS_BUCKET as string, client: s3, thresholdBytes: 1024 * 1024 }),
    consume: true
  })
  app.get('/created', { longRunning: true }, async (_request, reply) => {
    return await reply.code(201).type('application/octet-stream').header('location', '/things/7').header('etag', '"v1"')
      .header('x-rows', ['1', '2']).header('set-cookie', ['a=1; Path=/; HttpOnly', 'b=2; Path=/'])
      .send(bytes(SIZE))
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
}

t.test('a 201 with Location and ETag kept in S3: the client answers the route\'s status, headers and bytes', async t => {
  const url = await serve(t)
  const response = await fetchLongRunning(`${url}/created`)
  t.equal(response.status, 201, 'the route\'s status, not S3\'s 200')
  t.equal(response.headers.get('location'), '/things/7')
  t.equal(response.headers.get('etag'), '"v1"', 'the route\'s ETag, not S3\'s')
  t.equal(response.headers.get('x-rows'), '1, 2')
  t.same(response.headers.getSetCookie(), ['a=1; Path=/; HttpOnly', 'b=2; Path=/'], 'in Node, the route\'s cookies too')
  t.ok(Buffer.from(await response.arrayBuffer()).equals(bytes(SIZE)), 'byte for byte')
})

t.test('to Prefer: respond-async the plugin describes the result; plain requests still get the 303 to S3', async t => {
  const url = await serve(t)
  const described = await fetch(`${url}/created`, { headers: { prefer: 'respond-async, wait=10' } })
  t.equal(described.status, 202)
  t.equal(described.headers.get('preference-applied'), 'respond-async, wait=10')
  t.same(described.headers.getSetCookie(), ['a=1; Path=/; HttpOnly', 'b=2; Path=/'], 'cookies as headers of this answer')
  const body = await described.json() as { statusCode: number, headers: Record<string, unknown>, location: string, status: string }
  t.match(body, { status: 'done', statusCode: 201, headers: { location: '/things/7', etag: '"v1"', 'x-rows': ['1', '2'] } })
  t.equal(body.headers['set-cookie'], undefined, 'never in a body a script can read')
  t.equal(described.headers.get('location'), body.location)
  t.match(body.location, new RegExp(`^${env.AWS_ENDPOINT_URL_S3}/`))
  // The download needs no preflight: a GET with no headers; the bucket's CORS rule answers it.
  const download = await fetch(body.location, { headers: { origin: 'http://page.example' } })
  t.equal(download.headers.get('access-control-allow-origin'), '*', 'the template\'s CORS rule, on the emulator')
  t.ok(Buffer.from(await download.arrayBuffer()).equals(bytes(SIZE)))

  const redirected = await fetch(`${url}/created`, { redirect: 'manual' })
  t.equal(redirected.status, 303, 'curl -L and browser tabs: the 303, and then S3\'s own 200')
  t.equal(redirected.headers.get('x-long-running-status'), '201')
  t.same(redirected.headers.getSetCookie(), ['a=1; Path=/; HttpOnly', 'b=2; Path=/'], 'the route\'s cookies, on the redirect a browser stores them from')
  await redirected.arrayBuffer()
})

t.test('a body S3 no longer has: the call rejects, naming the download', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  // A plugin answer pointing at a key the bucket never held.
  app.get('/gone', async (_request, reply) => await reply.code(202).header('preference-applied', 'respond-async')
    .send({ id: 'x', status: 'done', statusCode: 200, headers: {}, location: `${env.AWS_ENDPOINT_URL_S3}/${env.JOBS_RESULTS_BUCKET}/results/none` }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  await t.rejects(fetchLongRunning(`${url}/gone`), { message: /could not be downloaded from http:\/\/127\.0\.0\.1:\d+: 404/ })
})
