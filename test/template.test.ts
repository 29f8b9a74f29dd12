import { existsSync, readFileSync } from 'node:fs'
import t from 'tap'
import { parse, type ScalarTag } from 'yaml'
import { buildApp } from '../example/app.js'
import { backendsFromEnv } from '../example/backends.js'
import { lifecycleResultTtl, s3Results } from '../src/results/s3-results.js'
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
/** A function's role: a role of the template's own (`Role: !GetAtt XRole.Arn`). */
const roleOf = (fn: Node): Node => resources[(fn.Properties.Role['Fn::GetAtt'] as string).replace(/\.Arn$/, '')]
const statementsOf = (fn: Node): Node[] => roleOf(fn).Properties.Policies.flatMap((p: Node) => p.PolicyDocument.Statement)
const policyActions = (fn: Node): string[] => statementsOf(fn).flatMap((s: Node) => s.Action)

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

t.test('issue 28: the HTTP function is sized for waiting, the worker for jobs; an HTTP API beside the REST API', async t => {
  t.equal(template.Globals.Function.MemorySize, undefined, 'each function sets its own')
  t.equal(functions.HttpFunction.Properties.MemorySize, 256, 'it accepts, waits and answers')
  t.equal(functions.WorkerFunction.Properties.MemorySize, 1024)
  t.equal(resources.HttpApi.Type, 'AWS::Serverless::HttpApi')
  const events = Object.values(functions.HttpFunction.Properties.Events) as Node[]
  const http = events.filter(event => event.Type === 'HttpApi').map(event => event.Properties)
  t.same(http.map(event => event.Path).sort(), ['/', '/{proxy+}'], 'every path, as on the REST API')
  for (const event of http) {
    t.same(event.ApiId, { Ref: 'HttpApi' })
    t.ok(event.TimeoutInMillis <= 30_000 && event.TimeoutInMillis > functions.HttpFunction.Properties.Timeout * 1000,
      'HTTP APIs allow 30 s: the function\'s 28 s fit, so it answers 303 itself')
  }
  t.same(events.filter(event => event.Type === 'Api').map(event => event.Properties.RestApiId), [{ Ref: 'Api' }, { Ref: 'Api' }], 'the REST API stays')
  t.match(template.Outputs.HttpApiUrl.Value['Fn::Sub'], /^https:\/\/\$\{HttpApi\}\./)
})

t.test('issue 28: concurrency reserved for the worker (≥ its MaximumConcurrency) and capped for the HTTP function', async t => {
  const worker = functions.WorkerFunction.Properties
  const mapping = resources.JobsEventSource.Properties
  t.same(worker.ReservedConcurrentExecutions, mapping.ScalingConfig.MaximumConcurrency,
    'reserved = the mapping\'s MaximumConcurrency: AWS asks for at least that, and waiting HTTP functions cannot take it')
  const http = functions.HttpFunction.Properties
  t.same(http.ReservedConcurrentExecutions, { Ref: 'HttpMaxConcurrency' })
  const cap = template.Parameters.HttpMaxConcurrency
  const wait = template.Parameters.WaitSeconds
  t.equal(cap.Type, 'Number')
  // Waiting requests in flight = requests per second × seconds each waits (Little's law).
  t.equal(cap.Default / wait.Default, 8, 'the default serves 8 new waiting requests a second at the default wait')
  t.ok(cap.Default + template.Parameters.WorkerMaxConcurrency.Default <= 900, 'the defaults leave 100 of the default 1,000 unreserved')
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
    t.equal(other.Properties.Policies, undefined, `${name}: no SAM policies (its generated role would attach AWSLambdaBasicExecutionRole: logs on *)`)
    const role = roleOf(other)
    t.equal(role.Type, 'AWS::IAM::Role', `${name}: a role of the template's own`)
    t.equal(role.Properties.ManagedPolicyArns, undefined, `${name}: no managed policies`)
    t.same(role.Properties.AssumeRolePolicyDocument.Statement, [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }])
  }
})

t.test('issue 28: each function logs to a log group of its own, with a retention, and may write to that one only', async t => {
  const retention = template.Parameters.LogRetentionDays
  t.same(retention.AllowedValues, [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653], 'the values CloudWatch Logs accepts')
  t.ok(retention.AllowedValues.includes(retention.Default))
  for (const [name, fn] of Object.entries(functions) as Array<[string, Node]>) {
    const group = fn.Properties.LoggingConfig.LogGroup.Ref as string
    t.equal(resources[group].Type, 'AWS::Logs::LogGroup', `${name} logs to ${group}`)
    t.same(resources[group].Properties.RetentionInDays, { Ref: 'LogRetentionDays' })
    const logs = statementsOf(fn).filter(statement => statement.Action.some((action: string) => action.startsWith('logs:')))
    t.same(logs, [{ Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: { 'Fn::GetAtt': `${group}.Arn` } }],
      `${name}: streams and events of its own group (its Arn ends in :*), no CreateLogGroup`)
  }
})

t.test('issue 28: what holds data survives a stack deletion and a replacement', async t => {
  // cfn-lint I3011's stateful types, as this template has them.
  const stateful = ['AWS::SQS::Queue', 'AWS::DynamoDB::Table', 'AWS::S3::Bucket', 'AWS::Logs::LogGroup']
  const found = Object.entries(resources).filter(([, r]) => stateful.includes(r.Type as string)).map(([name]) => name).sort()
  t.same(found, ['HttpFunctionLogs', 'JobsDeadLetterQueue', 'JobsQueue', 'JobsTable', 'ResultsBucket', 'WorkerFunctionLogs'])
  for (const name of found) {
    t.equal(resources[name].DeletionPolicy, 'Retain', `${name}: DeletionPolicy`)
    t.equal(resources[name].UpdateReplacePolicy, 'Retain', `${name}: UpdateReplacePolicy`)
    t.equal(resources[name].Properties.LogGroupName, undefined, `${name}: no fixed name, so a retained one never blocks a new stack`)
  }
})

t.test('issue 28: an alarm on the dead-letter queue\'s depth', async t => {
  const alarms = byType('AWS::CloudWatch::Alarm')
  t.equal(alarms.length, 1)
  t.match((alarms[0] as [string, Node])[1].Properties, {
    Namespace: 'AWS/SQS',
    MetricName: 'ApproximateNumberOfMessagesVisible',
    Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': 'JobsDeadLetterQueue.QueueName' } }],
    Statistic: 'Maximum',
    Threshold: 0,
    ComparisonOperator: 'GreaterThanThreshold',
    EvaluationPeriods: 1,
    TreatMissingData: 'notBreaching'
  })
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
    const ownLogs = `${fn.Properties.LoggingConfig.LogGroup.Ref as string}.Arn`
    for (const statement of statementsOf(fn)) {
      t.equal(statement.Effect, 'Allow')
      for (const action of statement.Action) t.notMatch(action, /\*/, `${name}: ${action} is not a wildcard`)
      const scoped = ['JobsQueue.Arn', 'JobsTable.Arn', 'ResultsBucket.Arn', ownLogs].includes(statement.Resource['Fn::GetAtt']) ||
        statement.Resource['Fn::Sub'] === RESULTS_OBJECTS
      t.ok(scoped, `${name}: scoped to the queue, the table, the bucket's results prefix or its own log group`)
    }
  }
  t.same(policyActions(functions.HttpFunction).sort(),
    ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem',
      'logs:CreateLogStream', 'logs:PutLogEvents', 's3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:ListBucket', 's3:PutObject', 'sqs:SendMessage'])
  t.same(policyActions(functions.WorkerFunction).sort(),
    ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem',
      'logs:CreateLogStream', 'logs:PutLogEvents', 's3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:ListBucket', 's3:PutObject',
      'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage'])
  // Both read objects that may be gone: without ListBucket, S3 says 403 AccessDenied for 404
  // NoSuchKey. A GetObject carries no s3:prefix, and a condition on a key absent from the request
  // is false: a grant conditioned on s3:prefix would not count for it. So none, on the stack's
  // own bucket.
  for (const name of ['HttpFunction', 'WorkerFunction']) {
    const list = statementsOf(functions[name]).find((s: Node) => s.Action.includes('s3:ListBucket'))
    t.same(list?.Resource, { 'Fn::GetAtt': 'ResultsBucket.Arn' }, `${name}: the results bucket`)
    t.equal(list?.Condition, undefined, `${name}: no condition that a GetObject could not meet`)
  }
})

t.test('results bucket: private, encrypted, expiring, readable from other origins with a URL', async t => {
  const bucket = resources.ResultsBucket.Properties
  t.same(bucket.PublicAccessBlockConfiguration, { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true })
  t.same(bucket.BucketEncryption.ServerSideEncryptionConfiguration, [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }], 'S3-managed keys')
  const [rule] = bucket.LifecycleConfiguration.Rules
  t.match(rule, { Status: 'Enabled', Prefix: 'results/', ExpirationInDays: { Ref: 'ResultTtlDays' }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } })
  // Issue 29: uploaded request bodies live under the same prefix, so the rule is their backstop too.
  const upload = s3Results({ bucket: 'results' }).upload?.('00000000-0000-4000-8000-000000000000')
  t.ok(upload?.key.startsWith(rule.Prefix as string), `uploads (${String(upload?.key)}) expire with the rule`)
  // Any header: a page's own fetch follows the 303 here with its headers (Prefer), after a preflight.
  t.match(bucket.CorsConfiguration.CorsRules, [{ AllowedMethods: ['GET', 'HEAD'], AllowedOrigins: ['*'], AllowedHeaders: ['*'], ExposedHeaders: ['Content-Disposition', 'Content-Encoding'] }])
  t.same(templateCorsRules(), [{ AllowedMethods: ['GET', 'HEAD'], AllowedOrigins: ['*'], AllowedHeaders: ['*'], ExposeHeaders: ['Content-Disposition', 'Content-Encoding'], MaxAgeSeconds: 3600 }],
    'npm run dev:aws gives its S3 emulator the same rule')
  t.same(template.Globals.Function.Environment.Variables.JOBS_RESULTS_BUCKET, { Ref: 'ResultsBucket' })
})

t.test('issue 28: the bucket refuses every request over plain HTTP', async t => {
  const policies = byType('AWS::S3::BucketPolicy').map(([, policy]) => policy.Properties)
  t.equal(policies.length, 1)
  const policy = policies[0] as Node
  t.same(policy.Bucket, { Ref: 'ResultsBucket' })
  t.same(policy.PolicyDocument.Statement, [{
    Sid: 'DenyInsecureTransport',
    Effect: 'Deny',
    Principal: '*',
    Action: 's3:*',
    Resource: [{ 'Fn::GetAtt': 'ResultsBucket.Arn' }, { 'Fn::Sub': '$' + '{ResultsBucket.Arn}/*' }],
    Condition: { Bool: { 'aws:SecureTransport': 'false' } }
  }], 'the bucket and its objects, whoever asks')
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

// cfn-lint cannot run here (no PyPI), so the rules of it that matter for this template are
// checked by hand: E1012/E1010/E1019 (Ref, GetAtt and Sub resolve), W2001 (parameters used),
// E3003 (required properties of the types used), E3034/E3030 (parameter defaults within their
// bounds), W3011 (both retention policies or neither), I3042 (no hard-coded partition), W1020
// (a Sub with nothing to substitute).
const PSEUDO = ['AWS::AccountId', 'AWS::NoValue', 'AWS::Partition', 'AWS::Region', 'AWS::StackId', 'AWS::StackName', 'AWS::URLSuffix']
const ATTRIBUTES: Record<string, string[]> = {
  'AWS::SQS::Queue': ['Arn', 'QueueName', 'QueueUrl'],
  'AWS::DynamoDB::Table': ['Arn', 'StreamArn'],
  'AWS::S3::Bucket': ['Arn', 'DomainName', 'RegionalDomainName'],
  'AWS::Logs::LogGroup': ['Arn'],
  'AWS::IAM::Role': ['Arn', 'RoleId'],
  'AWS::Serverless::Function': ['Arn']
}
const REQUIRED: Record<string, string[]> = {
  'AWS::Serverless::Function': ['Handler'],
  'AWS::Serverless::Api': ['StageName'],
  'AWS::Serverless::HttpApi': [],
  'AWS::IAM::Role': ['AssumeRolePolicyDocument'],
  'AWS::Logs::LogGroup': [],
  'AWS::Lambda::EventSourceMapping': ['FunctionName'],
  'AWS::SQS::Queue': [],
  'AWS::CloudWatch::Alarm': ['ComparisonOperator', 'EvaluationPeriods'],
  'AWS::DynamoDB::Table': ['KeySchema'],
  'AWS::S3::Bucket': [],
  'AWS::S3::BucketPolicy': ['Bucket', 'PolicyDocument']
}

function walk (node: unknown, visit: (key: string, value: unknown) => void): void {
  if (Array.isArray(node)) for (const item of node) walk(item, visit)
  else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      visit(key, value)
      walk(value, visit)
    }
  } else if (typeof node === 'string') visit('', node)
}

t.test('issue 28: what cfn-lint checks that matters here (it cannot run on this machine)', async t => {
  const parameters = Object.keys(template.Parameters)
  const used = new Set<string>()
  const names = new Set([...parameters, ...Object.keys(resources), ...PSEUDO])
  const checkAttribute = (target: string, where: string): void => {
    const [resource = '', attribute = ''] = target.split('.')
    const type = resources[resource]?.Type as string | undefined
    t.ok(type !== undefined, `${where}: GetAtt of ${resource}, a resource`)
    if (type !== undefined) t.ok(ATTRIBUTES[type]?.includes(attribute), `${where}: ${type} has the attribute ${attribute}`)
  }
  // The seq tags (FindInMap) parse as YAML nodes: plain JSON first.
  const plain = JSON.parse(JSON.stringify(template)) as Node
  for (const section of ['Resources', 'Outputs', 'Globals']) {
    walk(plain[section], (key, value) => {
      if (key === 'Ref') {
        t.ok(names.has(value as string), `${section}: Ref ${String(value)} resolves`)
        used.add(value as string)
      } else if (key === 'Fn::GetAtt') checkAttribute(value as string, section)
      else if (key === 'Fn::Sub') {
        const variables = [...(value as string).matchAll(/\$\{([^}!]+)\}/g)].map(match => match[1] as string)
        t.ok(variables.length > 0, `${section}: Sub ${String(value)} substitutes something`)
        for (const variable of variables) {
          if (variable.includes('.')) checkAttribute(variable, section)
          else t.ok(names.has(variable), `${section}: \${${variable}} resolves`)
          used.add(variable.split('.')[0] as string)
        }
      } else if (key === 'Fn::FindInMap') {
        t.ok(template.Mappings[(value as unknown[])[0] as string] !== undefined, `${section}: the map exists`)
      } else if (key === '' && typeof value === 'string') {
        t.notMatch(value, /arn:aws:/, `${section}: no hard-coded partition`)
      }
    })
  }
  for (const parameter of parameters) t.ok(used.has(parameter), `parameter ${parameter} is used`)
  for (const [name, parameter] of Object.entries(template.Parameters) as Array<[string, Node]>) {
    if (parameter.MinValue !== undefined) t.ok(parameter.Default >= parameter.MinValue && parameter.Default <= parameter.MaxValue, `${name}: default within bounds`)
    if (parameter.AllowedValues !== undefined) t.ok(parameter.AllowedValues.includes(parameter.Default), `${name}: default allowed`)
  }
  for (const [name, resource] of Object.entries(resources) as Array<[string, Node]>) {
    const required = REQUIRED[resource.Type as string]
    t.ok(required !== undefined, `${name}: ${String(resource.Type)} is a type this test knows`)
    for (const property of required ?? []) t.ok(resource.Properties?.[property] !== undefined, `${name}: ${property}`)
    t.equal(resource.DeletionPolicy === undefined, resource.UpdateReplacePolicy === undefined, `${name}: both retention policies or neither`)
  }
  for (const role of byType('AWS::IAM::Role').map(([, role]) => role.Properties)) {
    for (const policy of role.Policies as Node[]) t.ok(policy.PolicyName !== undefined && policy.PolicyDocument.Version === '2012-10-17', 'an inline policy: name and document')
  }
  for (const fn of Object.values(functions) as Node[]) {
    t.ok((fn.Properties.Runtime ?? template.Globals.Function.Runtime) !== undefined && (fn.Properties.CodeUri ?? template.Globals.Function.CodeUri) !== undefined,
      'a zip function: runtime and code')
  }
})
