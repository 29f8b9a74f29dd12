import { once } from 'node:events'
import { CreateQueueCommand } from '@aws-sdk/client-sqs'
import t from 'tap'
import { buildApp } from '../../example/app.js'
import { startEmulators } from '../../example/emulators.js'
import { dynamoDbStore, sqsQueue } from '../../src/index.js'
import { childProcesses, follow, listeningUrl, stopChild, type Child } from '../helpers/child.js'
import { Ledger } from '../helpers/ledger.js'
import { randomBody } from '../helpers/random.js'

// The container worker SIGKILLed at each point of a job's life, on the emulators. A fresh
// worker takes over and every accepted job ends with its exact response — or, after
// maxAttempts crashes, with the contract's 502 — learnt by the client within one wait.
const emulators = await startEmulators()
t.teardown(() => emulators.close())
const start = childProcesses(t, emulators.env)

async function scenario (name: string, crashes: string[]): Promise<{ response: Response, body: Buffer, runs: number, id: string }> {
  const { QueueUrl: queueUrl } = await emulators.sqs.send(new CreateQueueCommand({ QueueName: `crash-${name}`, Attributes: { VisibilityTimeout: '3' } }))
  const http = await buildApp({
    queue: sqsQueue({ queueUrl: queueUrl as string, client: emulators.sqs }),
    store: dynamoDbStore({ tableName: emulators.tableName, client: emulators.dynamodb }),
    waitSeconds: 2,
    pollIntervalMs: 50
  })
  let id = ''
  http.addHook('onSend', async (request, reply) => {
    const location = reply.getHeader('location')
    if (request.url.startsWith('/echo') && typeof location === 'string') id = /async-response\/([^?]+)/.exec(location)?.[1] ?? ''
  })
  await http.listen({ port: 0, host: '127.0.0.1' })
  const address = http.server.address() as { port: number }
  const body = randomBody(2048)
  const worker = (crashAt: string): Child => {
    return start('test/fixtures/crash-worker.ts', { JOBS_QUEUE_URL: queueUrl as string, CRASH_AT: crashAt })
  }
  const pending = follow(`http://127.0.0.1:${address.port}/echo?delay=1`, {
    method: 'POST', body, headers: { 'content-type': 'application/octet-stream' }
  })
  // The crashing workers all at once: each dies at its first claim, so the job still goes from
  // one to the next, without waiting for each one's start (seconds each under load).
  const crashed = crashes.map(worker)
  await Promise.all(crashed.map(async child => await once(child.process, 'exit')))
  let runs = 0
  for (const child of crashed) runs += child.lines.filter(line => line.msg === 'job attempt started').length
  const survivor = worker('none')
  const response = await pending
  const result = { response, body, runs: runs + survivor.lines.filter(line => line.msg === 'job attempt started').length, id }
  await stopChild(survivor)
  await http.close()
  return result
}

t.test('SIGKILL at every point of a job: a new worker delivers the exact response', async t => {
  const ledger = new Ledger()
  const points = ['before-claim', 'after-claim', 'in-handler', 'before-complete', 'before-delete']
  const results = await Promise.all(points.map(async point => {
    const result = await scenario(point, [point])
    ledger.accept(result.id, { status: 201, body: result.body })
    for (let i = 0; i < result.runs; i++) ledger.ran(result.id)
    ledger.finished(result.id, result.response.status, Buffer.from(await result.response.arrayBuffer()))
    return { point, runs: result.runs }
  }))
  const report = ledger.check(t, 2)
  t.same(results.map(({ point, runs }) => [point, runs]), [
    ['before-claim', 1], ['after-claim', 1], ['in-handler', 2], ['before-complete', 2], ['before-delete', 1]
  ], 'a handler runs again only when a crash cut it short')
  t.same(report, { jobs: 5, lost: 0, wrong: 0, extraRuns: 2 })
})

t.test('maxAttempts crashes in a row end the job with the contract\'s 502', async t => {
  const { response, runs } = await scenario('exhausted', ['in-handler', 'in-handler', 'in-handler'])
  t.equal(response.status, 502)
  t.match(await response.json(), { code: 'FST_LONG_RUNNING_ATTEMPTS_EXHAUSTED' })
  t.equal(runs, 3, 'three attempts, no fourth')
})

t.test('SIGKILL inside a job the container started itself: its backup message has another worker deliver it', async t => {
  const { QueueUrl: queueUrl } = await emulators.sqs.send(new CreateQueueCommand({ QueueName: 'crash-local', Attributes: { VisibilityTimeout: '3' } }))
  const http = await buildApp({
    queue: sqsQueue({ queueUrl: queueUrl as string, client: emulators.sqs }),
    store: dynamoDbStore({ tableName: emulators.tableName, client: emulators.dynamodb }),
    waitSeconds: 2,
    pollIntervalMs: 50
  })
  t.teardown(async () => await http.close())
  await http.listen({ port: 0, host: '127.0.0.1' })
  const container = start('test/fixtures/crash-worker.ts', { JOBS_QUEUE_URL: queueUrl as string, CRASH_AT: 'local-in-handler', LISTEN: '1' })
  const body = randomBody(2048)
  const exited = once(container.process, 'exit')
  await t.rejects(fetch(`${await listeningUrl(container)}/echo?delay=1`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } }),
    'the container dies with the request in hand')
  await exited
  const started = container.lines.filter(line => line.msg === 'job attempt started')
  t.equal(started.length, 1, 'the job started where it was accepted')
  const survivor = start('test/fixtures/crash-worker.ts', { JOBS_QUEUE_URL: queueUrl as string, CRASH_AT: 'none' })
  const response = await follow(`http://127.0.0.1:${(http.server.address() as { port: number }).port}/async-response/${String(started[0]?.jobId)}`)
  t.equal(response.status, 201)
  t.same(Buffer.from(await response.arrayBuffer()), body, 'the exact response')
  t.match(survivor.lines.filter(line => line.msg === 'job attempt started'), [{ attempt: 2 }], 'run once more, by the backup\'s worker')
  await stopChild(survivor)
})
