import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { buildApp } from '../../example/app.js'
import { childProcesses, follow, listeningUrl, stopChild } from '../helpers/child.js'
import { curl } from '../ecosystem/serve.js'
import { randomBody } from '../helpers/random.js'

// The example's `POST /echo?delay=2.5` with Idempotency-Key, on the embedded default and on
// the emulators as `npm run dev:aws` serves it (SQS, DynamoDB, the worker Lambda export fed by
// the event source mapping): two concurrent requests with one key and one body, one by fetch
// and one by `curl -L`, get the same 201 and bytes; a third gets them again; the handler ran
// once (`/stats`); the key with another body gets 422; a new key runs the handler again.
async function scenario (t: Test, url: string): Promise<void> {
  const executions = async (): Promise<number> => (await (await fetch(`${url}/stats`)).json() as { executions: number }).executions
  const before = await executions()
  const body = randomBody(3000)
  const key = `"${randomUUID()}"`
  const send = async (key: string, bytes: Buffer): Promise<{ status: number, body: Buffer, replayed: string | null }> => {
    const response = await follow(`${url}/echo?delay=2.5`, {
      method: 'POST',
      body: new Uint8Array(bytes),
      headers: { 'content-type': 'application/octet-stream', 'idempotency-key': key }
    })
    return { status: response.status, body: Buffer.from(await response.arrayBuffer()), replayed: response.headers.get('idempotent-replayed') }
  }
  const [byFetch, byCurl] = await Promise.all([
    send(key, body),
    curl(['-L', '-X', 'POST', '-H', 'content-type: application/octet-stream', '-H', `idempotency-key: ${key}`, '--data-binary', '@-', `${url}/echo?delay=2.5`], body)
  ])
  t.equal(byFetch.status, 201)
  t.equal(byCurl.status, 201)
  t.ok(byFetch.body.equals(body) && byCurl.bytes.equals(body), 'both get the body back, byte for byte')
  t.match(byCurl.headers, /\r\nx-echo: 1\r\n/i)

  const third = await send(key, body)
  t.equal(third.status, 201)
  t.ok(third.body.equals(body))
  t.equal(third.replayed, 'true')
  t.equal(await executions(), before + 1, 'the handler ran once')

  const reused = await send(key, randomBody(3000))
  t.equal(reused.status, 422)
  t.match(JSON.parse(reused.body.toString()), { code: 'FST_LONG_RUNNING_IDEMPOTENCY_KEY_REUSED' })
  const fresh = await send(randomUUID(), body)
  t.equal(fresh.status, 201)
  t.equal(await executions(), before + 2, 'a new key runs the handler again')
}

t.test('embedded default', async t => {
  const app = await buildApp({ waitSeconds: 1 })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  await scenario(t, `http://127.0.0.1:${(app.server.address() as { port: number }).port}`)
})

t.test('npm run dev:aws: SQS, DynamoDB and the worker Lambda on the emulators', async t => {
  const start = childProcesses(t)
  const server = start('example/dev-aws.ts', { PORT: '0', HOST: '127.0.0.1', WAIT_SECONDS: '1' })
  await scenario(t, await listeningUrl(server))
  t.equal(await stopChild(server), 0)
})
