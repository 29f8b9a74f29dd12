import { CreateQueueCommand } from '@aws-sdk/client-sqs'
import t from 'tap'
import { emulatorClients, startEmulators } from '../../example/emulators.js'
import { dynamoDbStore, sqsQueue } from '../../src/index.js'
import { buildTestApp, closeTestApp } from '../helpers/app.js'
import { chaos, FAULT_KINDS, runChaosClients } from '../helpers/chaos.js'
import { random, seedFromEnv } from '../helpers/random.js'
import { strictDynamoDb, strictSqs } from '../helpers/strict-aws.js'

// Jobs through the SQS and DynamoDB adapters while both fail at a seeded rate, every kind of
// failure mixed in. In `npm test`: a short run with a fixed seed. `npm run test:chaos`: a longer
// one with a new seed each time (printed; `SEED=n` replays it).
const jobs = Number(process.env.CHAOS_JOBS ?? 30)
const rate = Number(process.env.CHAOS_RATE ?? 0.05)
const seed = process.env.CHAOS_JOBS === undefined ? 7 : seedFromEnv()
const next = random(seed)
// Run directly (`npm run test:chaos`), tap's default 30 s per test would cut the long run short.
t.setTimeout(15 * 60_000)
t.comment(`chaos: seed ${seed}, ${jobs} jobs, fault rate ${rate}`)

const emulators = await startEmulators()
t.teardown(() => emulators.close())

t.test('under injected faults every accepted job ends with its exact response, each run at most maxAttempts times', async t => {
  const { sqs, dynamodb } = emulatorClients(emulators.env, { maxAttempts: 1 })
  t.teardown(() => { sqs.destroy(); dynamodb.destroy() })
  strictSqs(sqs)
  strictDynamoDb(dynamodb)
  const sqsFaults = chaos(sqs, FAULT_KINDS.sqs, rate, next)
  const dynamoFaults = chaos(dynamodb, FAULT_KINDS.dynamodb, rate, next)
  const { QueueUrl: queueUrl } = await emulators.sqs.send(new CreateQueueCommand({ QueueName: `chaos-${seed}` }))
  const test = await buildTestApp({
    queue: sqsQueue({ queueUrl: queueUrl as string, client: sqs, receiveBatchSize: 1, retryDelaySeconds: 0.05, visibilityTimeoutSeconds: 3 }),
    store: dynamoDbStore({ tableName: emulators.tableName, client: dynamodb }),
    consume: true,
    concurrency: 8,
    waitSeconds: 1,
    leaseSeconds: 3,
    pollIntervalMs: 20
  })
  t.teardown(() => closeTestApp(test))

  const { ledger, jobsByName, rejected } = await runChaosClients(test, jobs, next)
  const report = ledger.check(t, 3)
  // A request answered 503 can run only if SQS took its message but every answer was lost, and
  // a worker claimed the job before the HTTP side forgot it.
  const phantomRuns = [...test.runs.keys()].filter(name => !jobsByName.has(name)).length
  t.ok(phantomRuns <= (sqsFaults.get('lost-reply:SendMessageCommand') ?? 0), 'a 503 leaves no job behind, but for lost SendMessage answers')
  const kinds = (faults: Map<string, number>): Record<string, number> => Object.fromEntries([...faults].filter(([kind]) => !kind.includes(':')))
  t.comment(`report: ${JSON.stringify({
    seed,
    ...report,
    phantomRuns,
    faults: { sqs: kinds(sqsFaults), dynamodb: kinds(dynamoFaults) },
    clientRetries: rejected
  })}`)
})
