import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, StartMessageMoveTaskCommand } from '@aws-sdk/client-sqs'
import t from 'tap'
import { buildApp } from '../../example/app.js'
import { startEmulators } from '../../example/emulators.js'
import { dynamoDbStore, sqsQueue } from '../../src/index.js'
import { childProcesses, follow, stopChild } from '../helpers/child.js'
import { randomBody } from '../helpers/random.js'

// Idempotency-Key through a crash, on the emulators: the container worker is SIGKILLed in the
// handler; the client retries with its key while the worker is dead, again once the message has
// gone to the dead-letter queue, and again after an operator redrove it. Every retry attaches to
// the one job; the worker that takes it over stores one result, which every request gets.
const emulators = await startEmulators()
t.teardown(() => emulators.close())
const start = childProcesses(t, emulators.env)

t.test('SIGKILL mid-job, retries during the crash, after it, and after the DLQ redrive: one job, one result for all', async t => {
  const { sqs } = emulators
  const { QueueUrl: dlqUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'keys-dlq' }))
  const { Attributes: dlq } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))
  const { QueueUrl: queueUrl } = await sqs.send(new CreateQueueCommand({
    QueueName: 'keys',
    // One receive, then the DLQ: the crashed attempt's message goes there.
    Attributes: { VisibilityTimeout: '3', RedrivePolicy: JSON.stringify({ maxReceiveCount: 1, deadLetterTargetArn: dlq?.QueueArn }) }
  }))
  const http = await buildApp({
    queue: sqsQueue({ queueUrl: queueUrl as string, client: sqs, maxReceiveCount: 1 }),
    store: dynamoDbStore({ tableName: emulators.tableName, client: emulators.dynamodb }),
    waitSeconds: 1,
    pollIntervalMs: 50
  })
  t.teardown(() => http.close())
  await http.listen({ port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${(http.server.address() as { port: number }).port}/echo?delay=1`
  const body = randomBody(2048)
  const key = randomUUID()
  const send = async (headers: Record<string, string> = {}): Promise<Response> => await fetch(url, {
    method: 'POST',
    body: new Uint8Array(body),
    headers: { 'content-type': 'application/octet-stream', 'idempotency-key': key, ...headers },
    redirect: 'manual'
  })
  const jobOf = (response: Response): string | undefined => /async-response\/([^?]+)/.exec(response.headers.get('location') ?? '')?.[1]
  const locations: string[] = []
  const keep = (response: Response): Response => {
    locations.push(new URL(response.headers.get('location') ?? '', url).href)
    return response
  }

  const accepted = keep(await send({ prefer: 'respond-async' }))
  t.equal(accepted.status, 202)
  const id = jobOf(accepted)

  const crashed = start('test/fixtures/crash-worker.ts', { JOBS_QUEUE_URL: queueUrl as string, CRASH_AT: 'in-handler' })
  // 'close', not 'exit': its last log lines may still be in the pipe when it has exited.
  await once(crashed.process, 'close')
  t.equal(crashed.lines.filter(line => line.msg === 'job attempt started').length, 1, 'the first attempt started, then the worker died')

  const duringCrash = keep(await send({ prefer: 'respond-async' }))
  t.equal(duringCrash.status, 202)
  t.equal(jobOf(duringCrash), id, 'during the crash: the same job')

  // Its visibility timeout over, the message has used its one receive: SQS moves it to the DLQ.
  const { Messages: dead } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 20, VisibilityTimeout: 0 }))
  t.equal(JSON.parse(dead?.[0]?.Body ?? '{}').id, id, 'the job\'s message is in the DLQ')
  const afterCrash = keep(await send())
  t.equal(afterCrash.status, 303, 'after the crash, the message in the DLQ: the retry waits, then is sent on')
  t.equal(jobOf(afterCrash), id)

  // The operator redrives to a queue of its own: the killed worker's last long poll may still be
  // open on the first one (SQS, like the emulator, ends it only after its 20 s), and would take
  // the message and, its one receive used, send it straight back to the DLQ.
  const { QueueUrl: redrivenUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'keys-redriven', Attributes: { VisibilityTimeout: '3' } }))
  const { Attributes: redriven } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: redrivenUrl, AttributeNames: ['QueueArn'] }))
  await sqs.send(new StartMessageMoveTaskCommand({ SourceArn: dlq?.QueueArn, DestinationArn: redriven?.QueueArn }))
  const survivor = start('test/fixtures/crash-worker.ts', { JOBS_QUEUE_URL: redrivenUrl as string, CRASH_AT: 'none' })
  const afterRedrive = await follow(url, {
    method: 'POST',
    body: new Uint8Array(body),
    headers: { 'content-type': 'application/octet-stream', 'idempotency-key': key }
  })
  t.equal(afterRedrive.status, 201)
  t.ok(Buffer.from(await afterRedrive.arrayBuffer()).equals(body), 'after the redrive: the result')
  for (const location of locations) {
    const result = await follow(location)
    t.equal(result.status, 201)
    t.ok(Buffer.from(await result.arrayBuffer()).equals(body), 'every earlier request gets the same bytes')
  }
  t.equal(survivor.lines.filter(line => line.msg === 'job attempt started').length, 1, 'one more attempt, by the worker that took over')
  t.equal(await stopChild(survivor), 0)
  t.equal((await http.longRunning.store.get(id as string))?.attempt, 2, 'one job: the crashed attempt and the one that finished it')
})
