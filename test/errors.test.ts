import t from 'tap'
import { errors } from '../src/index.js'

// Messages that count: one of a thing is singular (a route with `timeoutSeconds: 1` or
// `maxAttempts: 1` used to read "within 1 seconds", "after 1 attempts").
t.test('a count of one is singular, any other plural; the class and its code stay', async t => {
  const cases: Array<[new (count: number) => Error & { code: string }, string, string]> = [
    [errors.JobTimeoutError, 'The job did not finish within 1 second', 'The job did not finish within 900 seconds'],
    [errors.BodyTimeoutError, 'The request body did not arrive within 1 second', 'The request body did not arrive within 900 seconds'],
    [errors.AttemptsExhaustedError, 'The job failed after 1 attempt without producing a response', 'The job failed after 900 attempts without producing a response'],
    [errors.QueueFullError, 'The queue already holds 1 job waiting to run (its maxQueued)', 'The queue already holds 900 jobs waiting to run (its maxQueued)']
  ]
  for (const [ErrorClass, one, many] of cases) {
    const error = new ErrorClass(1)
    t.equal(error.message, one)
    t.equal(new ErrorClass(900).message, many)
    t.equal(new ErrorClass(0).message.includes(' 0 '), true, 'zero counts as plural')
    t.ok(error instanceof ErrorClass && error instanceof Error, 'instanceof holds')
    t.match(error.code, /^FST_LONG_RUNNING_/)
  }
  t.equal(new errors.JobTimeoutError(1).statusCode, 504)
  t.equal(new errors.BodyTimeoutError(1).statusCode, 408)
})
