import { execFile } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { CreateQueueCommand } from '@aws-sdk/client-sqs'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Emulators } from '../example/emulators.js'
import longRunning, { dynamoDbStore, redisQueue, redisStore, sqsQueue, type LongRunningOptions } from '../src/index.js'

/** Percentile (nearest rank) of already collected samples. */
export function percentile (samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN
}

/** Counts AWS SDK calls by command, through a middleware on the real client. */
export function countCalls (client: { middlewareStack: { add: (m: any, o: any) => void } }): Map<string, number> {
  const counts = new Map<string, number>()
  client.middlewareStack.add((next: (args: unknown) => Promise<unknown>, context: { commandName: string }) => async (args: unknown) => {
    counts.set(context.commandName, (counts.get(context.commandName) ?? 0) + 1)
    return await next(args)
  }, { step: 'initialize', name: `count-${Math.random()}` })
  return counts
}

export type Backend = 'embedded' | 'emulators' | 'redis'
let queues = 0

/**
 * The bench app: `GET /sleep?ms=N` is long-running and sleeps N ms; `GET /plain` is ordinary.
 * On `emulators` this process is also the container worker (SQS long polling, DynamoDB polling);
 * on `redis` (the server at `BENCH_REDIS_URL`, which `bench/run.ts` starts) it is a replica that
 * serves and runs jobs, a queue of its own per app. `sharedQueue` is a queue the app shares with
 * a worker elsewhere: its URL on the emulators, its name on Redis.
 */
export async function benchApp (
  backend: Backend,
  emulators: Pick<Emulators, 'sqs' | 'dynamodb' | 'tableName'> | undefined,
  options: LongRunningOptions = {},
  sharedQueue?: string
): Promise<{ app: FastifyInstance, url: string }> {
  const app = Fastify()
  // A queue per app (unless it shares one with a worker elsewhere): local-aws-sqs keeps serving
  // the long polls of a closed app's worker, and the messages they take stay hidden for the
  // visibility timeout (on AWS too, a poll cut short may hide messages that long).
  const queueUrl = sharedQueue ?? (backend === 'emulators' && emulators !== undefined
    ? await createQueue(emulators)
    : '')
  const redisUrl = process.env.BENCH_REDIS_URL ?? ''
  await app.register(longRunning, {
    ...(backend === 'redis'
      ? { queue: redisQueue({ url: redisUrl, name: sharedQueue ?? `bench-${process.pid}-${++queues}` }), store: redisStore({ url: redisUrl }), consume: true }
      : {}),
    ...(backend === 'emulators' && emulators !== undefined
      ? {
          queue: sqsQueue({ queueUrl, client: emulators.sqs, receiveBatchSize: 1 }),
          store: dynamoDbStore({ tableName: emulators.tableName, client: emulators.dynamodb }),
          consume: true
        }
      : {}),
    concurrency: 1000,
    ...options
  })
  app.get<{ Querystring: { ms: string } }>('/sleep', { longRunning: true }, async (request) => {
    const ms = Number(request.query.ms)
    if (ms > 0) await sleep(ms)
    // When the job ended, by this machine's clock (the clients share it): the delivery delay is
    // measured from here.
    return { slept: ms, endedAt: Date.now() }
  })
  app.get('/plain', async () => ({ plain: true }))
  return { app, url: await listen(app) }
}

/** A new queue on the emulators, for one bench app (and its worker, wherever it runs). */
export async function createQueue (emulators: Pick<Emulators, 'sqs'>): Promise<string> {
  return (await emulators.sqs.send(new CreateQueueCommand({ QueueName: `bench-${process.pid}-${++queues}` }))).QueueUrl as string
}

export async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
}

/** A timed request chain: total ms, final status, hops, and ms from the job's end (`endedAt` in the answer) to its arrival. */
export interface Timed { ms: number, status: number, hops: number, afterEndMs: number }

function afterEnd (body: string): number {
  const { endedAt } = JSON.parse(body) as { endedAt: number }
  return Date.now() - endedAt
}

/** GET with fetch, following 303s and the 202s that come after 18 hops. */
export async function timedFetch (url: string): Promise<Timed> {
  const start = performance.now()
  let response = await fetch(url)
  let hops = Number(new URL(response.url).searchParams.get('hop') ?? 0)
  while (response.status === 202) {
    await response.arrayBuffer()
    response = await fetch(new URL(response.headers.get('location') ?? '', url))
    hops = Number(new URL(response.url).searchParams.get('hop') ?? hops)
  }
  const body = await response.text()
  return { ms: performance.now() - start, status: response.status, hops, afterEndMs: afterEnd(body) }
}

const run = promisify(execFile)

/** The same with `curl -L` (a new process per request chain, as a shell user would). */
export async function timedCurl (url: string): Promise<Timed> {
  const start = performance.now()
  let target = url
  let hops = 0
  for (;;) {
    const { stdout } = await run('curl', ['-sL', '-w', '\n%{http_code} %{num_redirects} %header{location}', target])
    const end = stdout.lastIndexOf('\n')
    const [code = '0', redirects = '0', location = ''] = stdout.slice(end + 1).split(' ')
    hops += Number(redirects)
    if (code !== '202') return { ms: performance.now() - start, status: Number(code), hops, afterEndMs: afterEnd(stdout.slice(0, end)) }
    target = new URL(location, url).toString()
  }
}
