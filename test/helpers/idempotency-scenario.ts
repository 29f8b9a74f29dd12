import { randomUUID } from 'node:crypto'
import type { Test } from 'tap'
import { curl } from '../ecosystem/serve.js'
import { follow } from './child.js'
import { randomBody } from './random.js'

/**
 * The example's `POST /echo?delay=2.5` with Idempotency-Key, against the example at `url`
 * (waiting 1 s, so that the requests go through 303s): two concurrent requests with one key and
 * one body, one by fetch and one by `curl -L`, get the same 201 and bytes; a third gets them
 * again; the handler ran once (`/stats`); the key with another body gets 422; a new key runs the
 * handler again.
 */
export async function idempotencyScenario (t: Test, url: string): Promise<void> {
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
