import Fastify from 'fastify'
import t from 'tap'
import longRunning, { dynamoDbStore, memoryQueue, memoryStore, redisQueue, redisStore, s3Results, sqsQueue } from '../src/index.js'

async function register (options: unknown): Promise<unknown> {
  const app = Fastify()
  try {
    await app.register(longRunning, options as object)
    await app.ready()
    return undefined
  } catch (error) {
    return error
  } finally {
    await app.close()
  }
}

t.test('every option is checked at registration, naming the option, the expectation and the value', async t => {
  const cases: Array<[unknown, string]> = [
    [{ waitSeconds: -1 }, 'Expected `waitSeconds` to be a number from 0 to 900, got -1'],
    [{ waitSeconds: '25' }, 'Expected `waitSeconds` to be a number from 0 to 900, got "25"'],
    [{ waitSeconds: Number.NaN }, 'Expected `waitSeconds` to be a number from 0 to 900, got NaN'],
    [{ timeoutSeconds: 0 }, 'Expected `timeoutSeconds` to be a number from 1 to 42000, got 0'],
    // SQS's 12-hour visibility cap, with the longest lease and time to store the result.
    [{ timeoutSeconds: 43_200 }, 'Expected `timeoutSeconds` to be a number from 1 to 42000, got 43200'],
    [{ leaseSeconds: 3600 }, 'Expected `leaseSeconds` to be a number from 3 to 900, got 3600'],
    [{ maxAttempts: 1.5 }, 'Expected `maxAttempts` to be an integer from 1 to 100, got 1.5'],
    [{ concurrency: 0 }, 'Expected `concurrency` to be an integer from 1 to 10000, got 0'],
    [{ resultTtlSeconds: null }, 'Expected `resultTtlSeconds` to be an integer from 1 to 31622400, got null'],
    [{ leaseSeconds: 1 }, 'Expected `leaseSeconds` to be a number from 3 to 900, got 1'],
    [{ bodyTimeoutSeconds: 0 }, 'Expected `bodyTimeoutSeconds` to be a number from 1 to 3600, got 0'],
    [{ bodyTimeoutSeconds: 'x' as never }, 'Expected `bodyTimeoutSeconds` to be a number from 1 to 3600, got "x"'],
    [{ pollIntervalMs: [] }, 'Expected `pollIntervalMs` to be a number from 10 to 60000, got an array'],
    [{ consume: 'yes' }, 'Expected `consume` to be a boolean, got "yes"'],
    [{ waitingPage: 'off' }, 'Expected `waitingPage` to be a boolean, got "off"'],
    [{ routePrefix: '/api/' }, "Expected `routePrefix` to be a path like '/prod' (or '') without a trailing slash, got \"/api/\""],
    [{ basePath: 'prod' }, "Expected `basePath` to be a path like '/prod' (or '') without a trailing slash, got \"prod\""],
    [{ basePath: '/a b' }, "Expected `basePath` to be a path like '/prod' (or '') without a trailing slash, got \"/a b\""],
    [{ bindTo: 'user' }, 'Expected `bindTo` to be a function, got "user"'],
    [{ carry: { user: 1 } }, 'Expected `carry` to be a function, got an object'],
    [{ awsLambdaProperty: 'aws lambda' }, 'Expected `awsLambdaProperty` to be a property name, got "aws lambda"'],
    [{ closeGraceSeconds: -1 }, 'Expected `closeGraceSeconds` to be a number from 0 to 3600, got -1'],
    [{ clock: { now: Date.now } }, 'Expected `clock` to be an object with now, setTimeout, clearTimeout, got an object'],
    [{ dropHeaders: 'cookie' }, 'Expected `dropHeaders` to be an array of lower-case header names, got "cookie"'],
    [{ dropHeaders: ['cookie', 'Authorization'] }, 'Expected `dropHeaders[1]` to be a lower-case header name, got "Authorization"'],
    [{ queue: {} }, 'Expected `queue` to be an object with send, consume, got an object'],
    [{ idempotency: 'on' }, 'Expected `idempotency` to be true, false or an object, got "on"'],
    [{ idempotency: { header: 'Idempotency-Key' } }, 'Expected `idempotency.header` to be a lower-case header name, got "Idempotency-Key"'],
    [{ idempotency: { header: 'a b' } }, 'Expected `idempotency.header` to be a lower-case header name, got "a b"'],
    [{ idempotency: { required: 1 } }, 'Expected `idempotency.required` to be a boolean, got 1'],
    [{ idempotency: { strict: 'yes' } }, 'Expected `idempotency.strict` to be a boolean, got "yes"'],
    [{ store: () => {} }, 'Expected `store` to be an object with create, reserveKey, get, claim, renew, setProgress, complete, cancel, delete, got a function']
  ]
  for (const [options, message] of cases) {
    const error = await register(options) as { code?: string, message?: string } | undefined
    t.equal(error?.code, 'FST_LONG_RUNNING_INVALID_OPTION', JSON.stringify(options))
    t.equal(error?.message, message)
    t.ok(error instanceof TypeError)
  }
})

t.test('valid options register', async t => {
  t.equal(await register({}), undefined)
  t.equal(await register({
    waitSeconds: 0,
    timeoutSeconds: 1,
    maxAttempts: 1,
    concurrency: 1,
    resultTtlSeconds: 1,
    leaseSeconds: 3,
    pollIntervalMs: 10,
    consume: false,
    waitingPage: false,
    routePrefix: '/jobs',
    basePath: '/prod',
    bindTo: () => 'x',
    idempotency: { header: 'x-request-key', required: true, strict: true },
    queue: memoryQueue()
  }), undefined)
  t.equal(await register({ idempotency: false }), undefined)
  t.equal(await register({ idempotency: true }), undefined)
})

t.test('route options are checked when the route is added, naming the route', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(longRunning)
  t.throws(() => app.get('/a', { longRunning: { waitSeconds: 1000 } }, async () => 'a'),
    { code: 'FST_LONG_RUNNING_INVALID_OPTION', message: 'Expected `GET /a longRunning.waitSeconds` to be a number from 0 to 900, got 1000' })
  t.throws(() => app.get('/b', { longRunning: 'yes' as unknown as boolean }, async () => 'b'),
    { message: 'Expected `GET /b longRunning` to be true or an object, got "yes"' })
  t.throws(() => app.get('/c', { longRunning: { maxAttempts: 0 } }, async () => 'c'),
    { message: 'Expected `GET /c longRunning.maxAttempts` to be an integer from 1 to 100, got 0' })
  t.throws(() => app.post('/k', { longRunning: { idempotency: { header: 'X' } } }, async () => 'k'),
    { message: 'Expected `POST /k longRunning.idempotency.header` to be a lower-case header name, got "X"' })
  t.throws(() => app.post('/l', { longRunning: { idempotency: null as unknown as boolean } }, async () => 'l'),
    { message: 'Expected `POST /l longRunning.idempotency` to be true, false or an object, got null' })
  app.get('/d', { longRunning: false }, async () => 'd')
  app.get('/e', { longRunning: { timeoutSeconds: 5 } }, async () => 'e')
  t.equal((await app.inject('/d')).body, 'd', 'longRunning: false is an ordinary route')
})

t.test('routePrefix moves the result route; basePath prefixes Location', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(longRunning, { routePrefix: '/jobs', basePath: '/prod', waitSeconds: 10 })
  app.get('/slow', { longRunning: true }, async () => 'ok')
  const response = await app.inject({ url: '/slow', headers: { prefer: 'wait=0' } })
  t.equal(response.statusCode, 303)
  const location = response.headers.location as string
  t.match(location, /^\/prod\/jobs\/async-response\/[0-9a-f-]{36}\?hop=1$/)
  const resumed = await app.inject(location.slice('/prod'.length))
  t.equal(resumed.body, 'ok')
})

t.test('a resultTtlSeconds longer than the results bucket keeps bodies (s3Results\' expireAfterDays) is refused: a result would outlive its body', async t => {
  const results = (expireAfterDays?: number) => s3Results({ bucket: 'results', ...(expireAfterDays === undefined ? {} : { expireAfterDays }) })
  const refused = await register({ results: results(1), resultTtlSeconds: 86_400 }) as { code?: string, message?: string } | undefined
  t.equal(refused?.code, 'FST_LONG_RUNNING_INVALID_OPTION')
  t.equal(refused?.message, 'Expected `resultTtlSeconds` to be at most 82800 (the results bucket\'s lifecycle, `expireAfterDays` of `s3Results`, deletes bodies sooner), got 86400')
  t.equal(await register({ results: results(1), resultTtlSeconds: 82_800 }), undefined, 'an hour less than the lifecycle\'s day')
  t.equal(await register({ results: results(1) }), undefined, 'the default hour')
  t.equal(await register({ results: results(30), resultTtlSeconds: 29 * 86_400 }), undefined)
  t.equal(await register({ results: results(), resultTtlSeconds: 366 * 86_400 }), undefined, 'no lifecycle named: nothing to contradict')
  t.throws(() => results(0), { code: 'FST_LONG_RUNNING_INVALID_OPTION', message: 'Expected `expireAfterDays` to be an integer from 1 to 36500, got 0' })
})

// JavaScript has no compiler to catch a misspelled name: each one is refused where it is given,
// naming it and the known name it was probably meant to be (or them all when none is near).
t.test('unknown option names are refused at registration, naming the nearest known one', async t => {
  const cases: Array<[unknown, string]> = [
    [{ waitSecond: 5 }, 'Expected `waitSecond` to be an option of fastify-long-running (did you mean `waitSeconds`?), got 5'],
    [{ WaitSeconds: 5 }, 'Expected `WaitSeconds` to be an option of fastify-long-running (did you mean `waitSeconds`?), got 5'],
    [{ timeout: 60 }, 'Expected `timeout` to be an option of fastify-long-running (did you mean `timeoutSeconds`?), got 60'],
    [{ bindto: () => 'u' }, 'Expected `bindto` to be an option of fastify-long-running (did you mean `bindTo`?), got a function'],
    [{ idempotency: { requird: true } }, 'Expected `idempotency.requird` to be a known option (did you mean `required`?), got true'],
    [{ idempotency: { x: 1 } }, 'Expected `idempotency.x` to be a known option (one of `header`, `required`, `strict`), got 1']
  ]
  for (const [options, message] of cases) {
    const error = await register(options) as { code?: string, message?: string } | undefined
    t.equal(error?.code, 'FST_LONG_RUNNING_INVALID_OPTION', JSON.stringify(options))
    t.equal(error?.message, message)
  }
  t.equal(await register({ prefix: '/v1', logLevel: 'warn', logSerializers: {} }), undefined, "Fastify's own options of register() are not unknown")
})

t.test('unknown route option names are refused when the route is added', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(longRunning)
  t.throws(() => app.get('/a', { longRunning: { waitSecond: 3 } as never }, async () => 'a'),
    { code: 'FST_LONG_RUNNING_INVALID_OPTION', message: 'Expected `GET /a longRunning.waitSecond` to be a known option (did you mean `waitSeconds`?), got 3' })
  t.throws(() => app.get('/b', { longRunning: { concurrency: 3 } as never }, async () => 'b'),
    { message: 'Expected `GET /b longRunning.concurrency` to be a known option (one of `waitSeconds`, `timeoutSeconds`, `maxAttempts`, `idempotency`), got 3' })
  t.throws(() => app.post('/c', { longRunning: { idempotency: { strikt: true } } as never }, async () => 'c'),
    { message: 'Expected `POST /c longRunning.idempotency.strikt` to be a known option (did you mean `strict`?), got true' })
})

t.test('unknown option names of every adapter are refused when it is made', async t => {
  const cases: Array<[() => unknown, string]> = [
    [() => memoryQueue({ maxQueue: 5 } as never), 'Expected `maxQueue` to be an option of memoryQueue (did you mean `maxQueued`?), got 5'],
    [() => memoryStore({ maxByte: 5 } as never), 'Expected `maxByte` to be an option of memoryStore (did you mean `maxBytes`?), got 5'],
    [() => sqsQueue({ queueUrl: 'http://127.0.0.1:1/q', visibilityTimeout: 60 } as never), 'Expected `visibilityTimeout` to be an option of sqsQueue (did you mean `visibilityTimeoutSeconds`?), got 60'],
    [() => dynamoDbStore({ tableName: 'jobs', table: 'jobs' } as never), 'Expected `table` to be an option of dynamoDbStore (did you mean `tableName`?), got "jobs"'],
    [() => s3Results({ bucket: 'results', threshold: 1 } as never), 'Expected `threshold` to be an option of s3Results (did you mean `thresholdBytes`?), got 1'],
    [() => redisQueue({ url: 'redis://127.0.0.1:1', prefx: 'q' } as never), 'Expected `prefx` to be an option of redisQueue (did you mean `prefix`?), got "q"'],
    [() => redisStore({ url: 'redis://127.0.0.1:1', ttl: 5 } as never), 'Expected `ttl` to be an option of redisStore (one of `url`, `prefix`, `maxValueBytes`, `clock`), got 5']
  ]
  for (const [make, message] of cases) t.throws(make, { code: 'FST_LONG_RUNNING_INVALID_OPTION', message })
})
