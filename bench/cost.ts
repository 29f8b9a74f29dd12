import type { Emulators } from '../example/emulators.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { benchApp, countCalls, createQueue } from './lib.js'
import { startWorkerProcess } from './worker-process.js'

const WRITES = ['PutItemCommand', 'UpdateItemCommand', 'BatchWriteItemCommand', 'DeleteItemCommand']
const READS = ['GetItemCommand', 'BatchGetItemCommand']

export interface CostReport {
  perJob: Record<string, number>
  sqsSendsPerJob: number
  dynamoWritesPerJob: number
  dynamoReadsPerJob: number
  pollReadsPerWaitingSecondOneWaiter: number
  pollReadsPerSecondManyWaiters: { waiters: number, readsPerSecond: number }
  /** DynamoDB reads while one request waits (`waitSeconds` 25) for a 10 s job, by where its worker runs. */
  readsTenSecondJob: { workerInProcess: number, workerElsewhere: number }
}

const sum = (counts: Map<string, number>, names: string[]): number => names.reduce((total, name) => total + (counts.get(name) ?? 0), 0)

/**
 * AWS requests per job, counted by a middleware on the real SDK clients (on the emulators):
 * zero-delay jobs one after the other (their backup messages included), then polling reads
 * while requests wait for 4 s jobs.
 */
export async function cost (emulators: Emulators, jobs: number, waiters: number): Promise<CostReport> {
  const sqs = countCalls(emulators.sqs)
  const dynamodb = countCalls(emulators.dynamodb)
  // A short lease: each job's backup message (the app runs the jobs it accepts) shows within
  // seconds, finds its job done and is deleted; its requests count towards the job's.
  const short = await benchApp('emulators', emulators, { waitSeconds: 20, leaseSeconds: 3 })
  const snapshot = (): Map<string, number> => new Map([...sqs, ...dynamodb])
  const deletesBefore = sqs.get('DeleteMessageCommand') ?? 0
  for (let i = 0; i < jobs; i++) await (await fetch(`${short.url}/sleep?ms=0`)).arrayBuffer()
  while ((sqs.get('DeleteMessageCommand') ?? 0) - deletesBefore < jobs) await sleep(100)
  const counts = snapshot()
  const perJob = Object.fromEntries([...counts].map(([name, count]) => [name.replace('Command', ''), count / jobs]))
  await short.app.close()

  // The default lease from here on: no backup shows while the jobs below run, so that only the
  // waiting requests' reads are counted.
  const { app, url } = await benchApp('emulators', emulators, { waitSeconds: 20 })

  const pollReads = async (clients: number, ms: number): Promise<number> => {
    const before = sum(snapshot(), READS)
    const start = performance.now()
    await Promise.all(Array.from({ length: clients }, async () => await (await fetch(`${url}/sleep?ms=${ms}`)).arrayBuffer()))
    return (sum(snapshot(), READS) - before) / ((performance.now() - start) / 1000)
  }
  const one = await pollReads(1, 4000)
  const many = await pollReads(waiters, 4000)
  await app.close()
  const readsOfOneJob = async (url: string): Promise<number> => {
    const before = sum(snapshot(), READS)
    await (await fetch(`${url}/sleep?ms=10000`)).arrayBuffer()
    return sum(snapshot(), READS) - before
  }
  const inProcess = await benchApp('emulators', emulators, { waitSeconds: 25 })
  const workerInProcess = await readsOfOneJob(inProcess.url)
  await inProcess.app.close()
  const queueUrl = await createQueue(emulators)
  const worker = await startWorkerProcess(emulators, queueUrl)
  const elsewhere = await benchApp('emulators', emulators, { waitSeconds: 25, consume: false }, queueUrl)
  const workerElsewhere = await readsOfOneJob(elsewhere.url)
  await elsewhere.app.close()
  await worker.close()
  return {
    perJob,
    sqsSendsPerJob: (counts.get('SendMessageCommand') ?? 0) / jobs,
    dynamoWritesPerJob: sum(counts, WRITES) / jobs,
    dynamoReadsPerJob: sum(counts, READS) / jobs,
    pollReadsPerWaitingSecondOneWaiter: one,
    pollReadsPerSecondManyWaiters: { waiters, readsPerSecond: many },
    readsTenSecondJob: { workerInProcess, workerElsewhere }
  }
}
