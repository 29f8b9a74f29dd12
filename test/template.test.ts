import { existsSync, readFileSync } from 'node:fs'
import t from 'tap'
import { parse, type ScalarTag } from 'yaml'
import { templateCorsRules } from '../example/results-cors.js'

// The SAM template, parsed with CloudFormation's short-form tags, checked for the invariants
// the plugin relies on.
const tag = (name: string, kind: 'scalar' | 'seq' = 'scalar'): ScalarTag => ({
  tag: `!${name}`,
  ...(kind === 'seq' ? { collection: 'seq' } : {}),
  resolve: (value: unknown) => ({ [name === 'Ref' ? 'Ref' : `Fn::${name}`]: value })
}) as ScalarTag
const customTags = [tag('Ref'), tag('GetAtt'), tag('Sub'), tag('Join', 'seq'), tag('Select', 'seq'), tag('If', 'seq')]

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
  t.match(rule, { Status: 'Enabled', Prefix: 'results/', ExpirationInDays: 1, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } })
  // Any header: a page's own fetch follows the 303 here with its headers (Prefer), after a preflight.
  t.match(bucket.CorsConfiguration.CorsRules, [{ AllowedMethods: ['GET', 'HEAD'], AllowedOrigins: ['*'], AllowedHeaders: ['*'], ExposedHeaders: ['Content-Disposition', 'Content-Encoding'] }])
  t.same(templateCorsRules(), [{ AllowedMethods: ['GET', 'HEAD'], AllowedOrigins: ['*'], AllowedHeaders: ['*'], ExposeHeaders: ['Content-Disposition', 'Content-Encoding'], MaxAgeSeconds: 3600 }],
    'npm run dev:aws gives its S3 emulator the same rule')
  t.same(template.Globals.Function.Environment.Variables.JOBS_RESULTS_BUCKET, { Ref: 'ResultsBucket' })
})
