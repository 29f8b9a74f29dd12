import { existsSync, readFileSync } from 'node:fs'
import t from 'tap'
import { parse, type ScalarTag } from 'yaml'
import { buildApp } from '../example/app.js'
import { backendsFromEnv } from '../example/backends.js'
import { lifecycleResultTtl } from '../src/results/s3-results.js'
import { templateCorsRules } from '../example/results-cors.js'

// The SAM template, parsed with CloudFormation's short-form tags, checked for the invariants
// the plugin relies on.
const tag = (name: string, kind: 'scalar' | 'seq' = 'scalar'): ScalarTag => ({
  tag: `!${name}`,
  ...(kind === 'seq' ? { collection: 'seq' } : {}),
  resolve: (value: unknown) => ({ [name === 'Ref' ? 'Ref' : `Fn::${name}`]: value })
}) as ScalarTag
const customTags = [tag('Ref'), tag('GetAtt'), tag('Sub'), tag('Join', 'seq'), tag('Select', 'seq'), tag('If', 'seq'), tag('FindInMap', 'seq')]

type Node = Record<string, any>
const template = parse(readFileSync('example/template.yaml', 'utf8'), { customTags }) as Node
const resources = template.Resources as Node
const byType = (type: string): Array<[string, Node]> => Object.entries(resources).filter(([, r]) => r.Type === type)
const functions = Object.fromEntries(byType('AWS::Serverless::Function')) as Node
// CloudFormation's `${…}` substitution, not a template literal.
const RESULTS_OBJECTS = '$' + '{ResultsBucket.Arn}/results/*'
const policyActions = (fn: Node): string[] => fn.Properties.Policies.flatMap((p: Node) => p.Statement.flatMap((s: Node) => s.Action))

t.test('both functions: nodejs22.x, esbuild of example/lambda.ts, handlers it exports', async t => {
  t.equal(template.Globals.Function.Runtime, 'nodejs22.x')
  const source = readFileSync('example/lambda.ts', 'utf8')
  for (const [name, fn] of Object.entries(functions) as Array<[string, Node]>) {
    t.equal(fn.Metadata.BuildMethod, 'esbuild', name)
    for (const entry of fn.Metadata.BuildProperties.EntryPoints) t.ok(existsSync(entry), `${entry} exists`)
    const exported = (fn.Properties.Handler as string).split('.')[1]
    t.match(source, new RegExp(`export const ${exported} =`), `${name}: lambda.${exported} is exported`)
  }
})

t.test('HTTP function: its timeout is above WaitSeconds and under API Gateway\'s 29 s', async t => {
  const fn = functions.HttpFunction
  const wait = template.Parameters.WaitSeconds
  t.ok(fn.Properties.Timeout < 29)
  t.ok(fn.Properties.Timeout > wait.Default && fn.Properties.Timeout > wait.MaxValue)
  t.same(template.Globals.Function.Environment.Variables.WAIT_SECONDS, { Ref: 'WaitSeconds' })
  t.same(resources.Api.Properties.BinaryMediaTypes, ['*~1*'], 'binary bodies pass through')
})

t.test('worker: an event source mapping with partial batch responses and bounded concurrency, at most 900 s', async t => {
  const fn = functions.WorkerFunction
  t.ok(fn.Properties.Timeout <= 900)
  t.equal(fn.Properties.Events, undefined, 'no SAM SQS event: it would attach AWSLambdaSQSQueueExecutionRole (receive/delete on *)')
  const mappings = byType('AWS::Lambda::EventSourceMapping')
  t.equal(mappings.length, 1)
  const mapping = (mappings[0] as [string, Node])[1].Properties
  t.same(mapping.FunctionName, { Ref: 'WorkerFunction' })
  t.same(mapping.EventSourceArn, { 'Fn::GetAtt': 'JobsQueue.Arn' })
  t.same(mapping.FunctionResponseTypes, ['ReportBatchItemFailures'])
  t.same(mapping.ScalingConfig.MaximumConcurrency, { Ref: 'WorkerMaxConcurrency' }, 'a burst of jobs cannot starve the HTTP function')
  t.ok(template.Parameters.WorkerMaxConcurrency.MinValue >= 2, 'the smallest MaximumConcurrency SQS allows')
  for (const [name, other] of Object.entries(functions) as Array<[string, Node]>) {
    t.same(other.Properties.Policies.filter((policy: unknown) => typeof policy === 'string'), [], `${name}: no managed policies`)
  }
})

t.test('queue: visibility ≥ 6× the worker timeout, a message size, redrive to a DLQ', async t => {
  const queue = resources.JobsQueue.Properties
  t.ok(queue.VisibilityTimeout >= 6 * functions.WorkerFunction.Properties.Timeout)
  t.equal(queue.MaximumMessageSize, 262144, 'the size sqsQueue() assumes by default')
  t.same(queue.RedrivePolicy.deadLetterTargetArn, { 'Fn::GetAtt': 'JobsDeadLetterQueue.Arn' })
  t.ok(queue.RedrivePolicy.maxReceiveCount > 3, 'above the default maxAttempts')
  const env = template.Globals.Function.Environment.Variables
  t.equal(Number(env.JOBS_MAX_RECEIVE_COUNT), queue.RedrivePolicy.maxReceiveCount, 'the plugin knows the redrive policy')
  t.equal(Number(env.JOBS_MESSAGE_RETENTION_SECONDS), resources.JobsDeadLetterQueue.Properties.MessageRetentionPeriod,
    'job records outlive a redrive from the DLQ (SQS keeps the original enqueue time)')
  t.equal(resources.JobsDeadLetterQueue.Type, 'AWS::SQS::Queue')
})

t.test('table: key id (String) only, on-demand, TTL on ttl', async t => {
  const table = resources.JobsTable.Properties
  t.same(table.KeySchema, [{ AttributeName: 'id', KeyType: 'HASH' }])
  t.same(table.AttributeDefinitions, [{ AttributeName: 'id', AttributeType: 'S' }])
  t.equal(table.BillingMode, 'PAY_PER_REQUEST')
  t.same(table.TimeToLiveSpecification, { AttributeName: 'ttl', Enabled: true })
  t.same(table.SSESpecification, { SSEEnabled: false }, 'the AWS owned key (free), not KMS')
})

t.test('least privilege: named actions on the two resources, nothing else', async t => {
  for (const [name, fn] of Object.entries(functions) as Array<[string, Node]>) {
    for (const policy of fn.Properties.Policies as Node[]) {
      for (const statement of policy.Statement as Node[]) {
        t.equal(statement.Effect, 'Allow')
        for (const action of statement.Action) t.notMatch(action, /\*/, `${name}: ${action} is not a wildcard`)
        const scoped = ['JobsQueue.Arn', 'JobsTable.Arn', 'ResultsBucket.Arn'].includes(statement.Resource['Fn::GetAtt']) ||
          statement.Resource['Fn::Sub'] === RESULTS_OBJECTS
        t.ok(scoped, `${name}: scoped to the queue, the table, or the bucket's results prefix`)
      }
    }
  }
  t.same(policyActions(functions.HttpFunction).sort(),
    ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem',
      's3:DeleteObject', 's3:GetObject', 's3:ListBucket', 'sqs:SendMessage'])
  t.same(policyActions(functions.WorkerFunction).sort(),
    ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem',
      's3:AbortMultipartUpload', 's3:PutObject',
      'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage'])
  const list = functions.HttpFunction.Properties.Policies.flatMap((p: Node) => p.Statement).find((s: Node) => s.Action.includes('s3:ListBucket'))
  t.same(list.Condition, { StringLike: { 's3:prefix': ['results/*'] } }, 'listing only under the results prefix')
})

t.test('results bucket: private, encrypted, expiring, readable from other origins with a URL', async t => {
  const bucket = resources.ResultsBucket.Properties
  t.same(bucket.PublicAccessBlockConfiguration, { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true })
  t.same(bucket.BucketEncryption.ServerSideEncryptionConfiguration, [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }], 'S3-managed keys')
  const [rule] = bucket.LifecycleConfiguration.Rules
  t.match(rule, { Status: 'Enabled', Prefix: 'results/', ExpirationInDays: { Ref: 'ResultTtlDays' }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } })
  // Any header: a page's own fetch follows the 303 here with its headers (Prefer), after a preflight.
  t.match(bucket.CorsConfiguration.CorsRules, [{ AllowedMethods: ['GET', 'HEAD'], AllowedOrigins: ['*'], AllowedHeaders: ['*'], ExposedHeaders: ['Content-Disposition', 'Content-Encoding'] }])
  t.same(templateCorsRules(), [{ AllowedMethods: ['GET', 'HEAD'], AllowedOrigins: ['*'], AllowedHeaders: ['*'], ExposeHeaders: ['Content-Disposition', 'Content-Encoding'], MaxAgeSeconds: 3600 }],
    'npm run dev:aws gives its S3 emulator the same rule')
  t.same(template.Globals.Function.Environment.Variables.JOBS_RESULTS_BUCKET, { Ref: 'ResultsBucket' })
})

t.test('one parameter, ResultTtlDays, sets the bucket\'s lifecycle and the results\' lifetime, which the plugin accepts together', async t => {
  const env = template.Globals.Function.Environment.Variables
  const rule = resources.ResultsBucket.Properties.LifecycleConfiguration.Rules[0]
  t.same(rule.ExpirationInDays, { Ref: 'ResultTtlDays' }, 'the lifecycle of results/')
  t.same(env.JOBS_RESULTS_EXPIRE_DAYS, { Ref: 'ResultTtlDays' }, 's3Results\' expireAfterDays')
  t.same(JSON.parse(JSON.stringify(env.JOBS_RESULT_TTL_SECONDS)), { 'Fn::FindInMap': ['ResultTtl', { Ref: 'ResultTtlDays' }, 'Seconds'] }, 'resultTtlSeconds')
  const parameter = template.Parameters.ResultTtlDays
  t.equal(parameter.Default, '1')
  t.same(Object.keys(template.Mappings.ResultTtl).sort(), [...parameter.AllowedValues].sort(), 'a lifetime for every allowed value')
  for (const days of parameter.AllowedValues as string[]) {
    const seconds = template.Mappings.ResultTtl[days].Seconds
    t.equal(typeof seconds, 'string', 'environment values are strings')
    t.equal(Number(seconds), lifecycleResultTtl(Number(days)), `${days} days: what s3Results allows`)
    // The example's own reading of the environment, registered: accepted, and a day more is refused.
    const accepted = await registerExample({ JOBS_RESULTS_BUCKET: 'results', JOBS_RESULTS_EXPIRE_DAYS: days, JOBS_RESULT_TTL_SECONDS: seconds })
    t.equal(accepted, undefined, `${days} days: the example registers`)
    const refused = await registerExample({ JOBS_RESULTS_BUCKET: 'results', JOBS_RESULTS_EXPIRE_DAYS: days, JOBS_RESULT_TTL_SECONDS: String(Number(days) * 86_400) })
    t.match(refused, { code: 'FST_LONG_RUNNING_INVALID_OPTION', message: /^Expected `resultTtlSeconds` to be at most/ })
  }
})

/**
 * Registers the example app with the backends `example/backends.ts` reads from `env`, as the
 * template's functions have them (the AWS adapters make no call before their first use).
 */
async function registerExample (variables: Record<string, string>): Promise<unknown> {
  const env = { JOBS_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/jobs', JOBS_TABLE: 'jobs', AWS_REGION: 'us-east-1', ...variables }
  const saved = { ...process.env }
  Object.assign(process.env, env)
  try {
    const app = await buildApp(backendsFromEnv())
    await app.close()
    return undefined
  } catch (error) {
    return error
  } finally {
    for (const name of Object.keys(env)) {
      if (saved[name] === undefined) delete process.env[name]
      else process.env[name] = saved[name]
    }
  }
}
