import { once } from 'node:events'
import { CreateQueueCommand } from '@aws-sdk/client-sqs'
import type { FastifyInstance } from 'fastify'
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
//
// Every scenario has a queue of its own and runs at once with the others (each start of a
// worker costs seconds of CPU): its crashing workers first, all at once (each dies at its first
// claim, so the job still goes from one to the next without waiting for each one's start). Once
// every crashing worker of every scenario has died, one survivor, a worker on all the queues
// (each logging its queue's name), takes the jobs over; a scenario counts its runs by its queue.
const emulators = await startEmulators()
t.teardown(() => emulators.close())
const start = childProcesses(t, emulators.env)

const POINTS = ['before-claim', 'after-claim', 'in-handler', 'before-complete', 'before-delete']
const SCENARIOS = [...POINTS, 'exhausted', 'local']
const queueUrls = new Map(await Promise.all(SCENARIOS.map(async name => {
  const { QueueUrl } = await emulators.sqs.send(new CreateQueueCommand({ QueueName: `crash-${name}`, Attributes: { VisibilityTimeout: '3' } }))
  return [name, QueueUrl as string] as const
})))
const queueOf = (name: string): string => queueUrls.get(name) as string

let crashesLeft = SCENARIOS.length
let startSurvivor = (): void => {}
const survivor = new Promise<Child>(resolve => {
  startSurvivor = () => { resolve(start('test/fixtures/crash-worker.ts', { JOBS_QUEUE_URL: [...queueUrls.values()].join(','), CRASH_AT: 'none' })) }
})
/** A scenario's crashes are over (or it failed before them): the survivor starts after the last one's. */
function crashesOver (): void {
  if (--crashesLeft === 0) startSurvivor()
}
/** Job runs the survivor started for the scenario `name`. */
async function survivorRuns (name: string): Promise<Array<Record<string, unknown>>> {
  return (await survivor).lines.filter(line => line.msg === 'job attempt started' && line.queue === `crash-${name}`)
}
const startedRuns = (child: Child): number => child.lines.filter(line => line.msg === 'job attempt started').length

async function httpApp (name: string): Promise<FastifyInstance> {
  const app = await buildApp({
    queue: sqsQueue({ queueUrl: queueOf(name), client: emulators.sqs }),
    store: dynamoDbStore({ tableName: emulators.tableName, client: emulators.dynamodb }),
    waitSeconds: 2,
    pollIntervalMs: 50
  })
  t.teardown(async () => await app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app
}

/** Stdout read to its end: a child's last log lines are only certain once it closed, not at its exit. */
const closed = async (child: Child): Promise<unknown> => await once(child.process, 'close')

/** Runs `body` as one scenario: its crashes are over once `body` calls `over`, or once it failed. */
async function counted<T> (body: (over: () => void) => Promise<T>): Promise<T> {
  let done = false
  const over = (): void => {
    if (!done) crashesOver()
    done = true
  }
  try {
    return await body(over)
  } finally {
    over()
  }
}

async function scenario (name: string, crashes: string[]): Promise<{ response: Response, body: Buffer, runs: number }> {
  return await counted(async over => {
    const http = await httpApp(name)
    const body = randomBody(2048)
    const pending = follow(`http://127.0.0.1:${(http.server.address() as { port: number }).port}/echo?delay=1`, {
      method: 'POST', body, headers: { 'content-type': 'application/octet-stream' }
    })
    const crashed = crashes.map(crashAt => start('test/fixtures/crash-worker.ts', { JOBS_QUEUE_URL: queueOf(name), CRASH_AT: crashAt }))
    await Promise.all(crashed.map(closed))
    over()
    const response = await pending
    const runs = crashed.reduce((sum, child) => sum + startedRuns(child), 0) + (await survivorRuns(name)).length
    return { response, body, runs }
  })
}

/** The container runs what it accepts and is SIGKILLed in that job's handler, the request in hand. */
async function localScenario (): Promise<{ rejected: boolean, containerRuns: number, response: Response, body: Buffer, survivorRuns: Array<Record<string, unknown>> }> {
  return await counted(async over => {
    const http = await httpApp('local')
    const body = randomBody(2048)
    const container = start('test/fixtures/crash-worker.ts', { JOBS_QUEUE_URL: queueOf('local'), CRASH_AT: 'local-in-handler', LISTEN: '1' })
    const closing = closed(container)
    const rejected = await fetch(`${await listeningUrl(container)}/echo?delay=1`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } })
      .then(() => false, () => true)
    await closing
    over()
    const started = container.lines.filter(line => line.msg === 'job attempt started')
    const response = await follow(`http://127.0.0.1:${(http.server.address() as { port: number }).port}/async-response/${String(started[0]?.jobId)}`)
    return { rejected, containerRuns: started.length, response, body, survivorRuns: await survivorRuns('local') }
  })
}

// All at once; each test below awaits its own and reports a failure there.
const points = POINTS.map(async point => await scenario(point, [point]))
const exhausted = scenario('exhausted', ['in-handler', 'in-handler', 'in-handler'])
const local = localScenario()
const all = [...points, exhausted, local]
for (const pending of all) pending.catch(() => {})
// The survivor stops (SIGTERM) once every scenario has its answer; the teardown kills what is left.
void Promise.allSettled(all).then(async () => { if (crashesLeft === 0) await stopChild(await survivor) })

t.test('SIGKILL at every point of a job: a new worker delivers the exact response', async t => {
  const ledger = new Ledger()
  // One job per scenario: the ledger names each by its crash point.
  const results = await Promise.all(points.map(async (pending, i) => {
    const point = POINTS[i] as string
    const result = await pending
    ledger.accept(point, { status: 201, body: result.body })
    for (let run = 0; run < result.runs; run++) ledger.ran(point)
    ledger.finished(point, result.response.status, Buffer.from(await result.response.arrayBuffer()))
    return { point, runs: result.runs }
  }))
  const report = ledger.check(t, 2)
  t.same(results.map(({ point, runs }) => [point, runs]), [
    ['before-claim', 1], ['after-claim', 1], ['in-handler', 2], ['before-complete', 2], ['before-delete', 1]
  ], 'a handler runs again only when a crash cut it short')
  t.same(report, { jobs: 5, lost: 0, wrong: 0, extraRuns: 2 })
})

t.test('maxAttempts crashes in a row end the job with the contract\'s 502', async t => {
  const { response, runs } = await exhausted
  t.equal(response.status, 502)
  t.match(await response.json(), { code: 'FST_LONG_RUNNING_ATTEMPTS_EXHAUSTED' })
  t.equal(runs, 3, 'three attempts, no fourth')
})

t.test('SIGKILL inside a job the container started itself: its backup message has another worker deliver it', async t => {
  const { rejected, containerRuns, response, body, survivorRuns } = await local
  t.ok(rejected, 'the container dies with the request in hand')
  t.equal(containerRuns, 1, 'the job started where it was accepted')
  t.equal(response.status, 201)
  t.same(Buffer.from(await response.arrayBuffer()), body, 'the exact response')
  t.match(survivorRuns, [{ attempt: 2 }], 'run once more, by the backup\'s worker')
})
