import { createError, type FastifyError } from '@fastify/error'

type CountingError<C extends string> = new (count: number) => FastifyError & { code: C }

/**
 * An error class whose message counts something (`%s` in `message` becomes `1 second`,
 * `2 seconds`: never `1 seconds`), constructed with the count alone.
 */
function counting<C extends string> (code: C, message: string, noun: string, statusCode: number): CountingError<C> {
  const Base = createError<C, [string]>(code, message, statusCode)
  return class extends Base {
    constructor (count: number) {
      super(`${count} ${noun}${count === 1 ? '' : 's'}`)
    }
  }
}

/**
 * Every error this plugin raises or stores carries a stable `code` starting with
 * `FST_LONG_RUNNING_`. Codes are part of the public API: match on them, not on messages.
 *
 * @example
 * if (err.code === errors.JobTimeoutError.code) metrics.count('job-timeout')
 */

/** A registration or route option is invalid. Thrown synchronously at registration. */
export const InvalidOptionError = createError<'FST_LONG_RUNNING_INVALID_OPTION', [string, string, unknown]>(
  'FST_LONG_RUNNING_INVALID_OPTION',
  'Expected `%s` to be %s, got %s',
  500,
  TypeError
)

/**
 * Unknown, expired, malformed or foreign job id. Deliberately the same answer for all four
 * so that a caller cannot tell an id that exists from one that does not.
 */
export const JobNotFoundError = createError('FST_LONG_RUNNING_NOT_FOUND', 'No such job', 404)

/** A `hop` query value that is not a small whole number. */
export const InvalidHopError = createError('FST_LONG_RUNNING_INVALID_HOP', 'Expected `hop` to be a whole number from 0 to 9999', 400)

/**
 * A request a worker could never replay (an absolute-form target, a missing or malformed
 * `Host`, a client address longer than an address can be): refused when it arrives, with the
 * reason, rather than accepted as a job that no worker would run.
 */
export const InvalidJobRequestError = createError<'FST_LONG_RUNNING_INVALID_REQUEST', [string]>(
  'FST_LONG_RUNNING_INVALID_REQUEST',
  'This request cannot run as a job: %s',
  400
)

/** The queue refused the job; nothing was kept, the client may retry. */
export const EnqueueFailedError = createError('FST_LONG_RUNNING_ENQUEUE_FAILED', 'The job could not be queued, retry later', 503)

/**
 * The embedded default is full: the memory queue already holds `maxQueued` jobs, or the memory
 * store cannot keep another request within `maxBytes`. The cause of a 503 `ENQUEUE_FAILED`.
 */
export const QueueFullError = counting('FST_LONG_RUNNING_QUEUE_FULL', 'The queue already holds %s waiting to run (its maxQueued)', 'job', 503)
export const StoreFullError = createError<'FST_LONG_RUNNING_STORE_FULL', [number, number]>(
  'FST_LONG_RUNNING_STORE_FULL',
  'Keeping %d more bytes would take the store over its maxBytes of %d',
  503
)

/** The job ran past its `timeoutSeconds`. Stored as the job's final response. */
export const JobTimeoutError = counting('FST_LONG_RUNNING_JOB_TIMEOUT', 'The job did not finish within %s', 'second', 504)

/** Every attempt crashed before producing a response. Stored as the job's final response. */
export const AttemptsExhaustedError = counting('FST_LONG_RUNNING_ATTEMPTS_EXHAUSTED', 'The job failed after %s without producing a response', 'attempt', 502)

/** The handler's response exceeds what the store keeps. Stored instead of the response. */
export const ResponseTooLargeError = createError<'FST_LONG_RUNNING_RESPONSE_TOO_LARGE', [number, number]>(
  'FST_LONG_RUNNING_RESPONSE_TOO_LARGE',
  'The response has %d bytes, more than the %d bytes a job result may have',
  502
)

/** The route's response failed while its body was written (its stream errored). Stored as the job's final response. */
export const ResponseFailedError = createError<'FST_LONG_RUNNING_RESPONSE_FAILED', [string]>(
  'FST_LONG_RUNNING_RESPONSE_FAILED',
  'The route\'s response failed while its body was written: %s',
  502
)

/**
 * A long-running route whose answer never ends, or is not a response: a websocket or SSE-only
 * route (refused at registration), `reply.hijack()` in a job run (thrown at the call), or a
 * `text/event-stream` answer (the job ends with this error at its first byte). A job's response
 * is stored whole and handed over once: serve such routes as ordinary ones.
 */
export const EndlessResponseError = createError<'FST_LONG_RUNNING_ENDLESS_RESPONSE', [string]>(
  'FST_LONG_RUNNING_ENDLESS_RESPONSE',
  'A long-running route must answer with a response that ends: %s',
  500
)

/** The job was cancelled (`DELETE /async-response/:id`) before it produced a response. Stored as its final response. */
export const JobCancelledError = createError('FST_LONG_RUNNING_JOB_CANCELLED', 'The job was cancelled', 409)

/**
 * The job's result was dropped before anyone read it: the embedded default's results nobody
 * has read may hold half its memory budget (`maxBytes`), and the oldest give way beyond that.
 * Stored as the job's final response.
 */
export const ResultEvictedError = createError('FST_LONG_RUNNING_RESULT_EVICTED', 'The job\'s result was dropped unread to keep the store within its memory budget', 410)

/**
 * A long-running request's body did not arrive within `bodyTimeoutSeconds`: the request is
 * refused and its connection closed, so that slow uploads cannot hold memory or sockets.
 */
export const BodyTimeoutError = counting('FST_LONG_RUNNING_BODY_TIMEOUT', 'The request body did not arrive within %s', 'second', 408)

/** A cancellation came after the job had already ended. */
export const JobFinishedError = createError('FST_LONG_RUNNING_JOB_FINISHED', 'The job has already finished', 409)

/** A queue message that can never be run (not JSON, wrong version, bad fields). */
export const InvalidMessageError = createError<'FST_LONG_RUNNING_INVALID_MESSAGE', [string]>(
  'FST_LONG_RUNNING_INVALID_MESSAGE',
  'Invalid job message: %s'
)

/** A Lambda event that is not an SQS batch. */
export const InvalidEventError = createError<'FST_LONG_RUNNING_INVALID_EVENT', [string]>(
  'FST_LONG_RUNNING_INVALID_EVENT',
  'Expected an SQS event with a `Records` array, got %s'
)

const BackendFailure = createError('FST_LONG_RUNNING_BACKEND', 'The jobs backend is unavailable, retry later', 503)

/**
 * A store or queue backend failed. The client hears only that, with `Retry-After` (a 503 is
 * worth a retry); what failed (`detail`: service, command and AWS's error name) and the SDK's
 * error (`cause`) stay in the logs, where the error is logged whole.
 */
export class BackendError extends BackendFailure {
  readonly detail: string
  readonly headers = { 'retry-after': '1' }

  constructor (detail: string, options?: { cause: unknown }) {
    super(...(options === undefined ? [] : [options]))
    this.detail = detail
  }
}

/** A message larger than the queue takes (`maxMessageBytes`); the HTTP side claim-checks before this. */
export const MessageTooLargeError = createError<'FST_LONG_RUNNING_MESSAGE_TOO_LARGE', [number, number]>(
  'FST_LONG_RUNNING_MESSAGE_TOO_LARGE',
  'Message of %d bytes exceeds the queue\'s %d'
)

/** A request or response larger than a Redis store keeps (`redisStore`'s `maxValueBytes`). */
export const ValueTooLargeError = createError<'FST_LONG_RUNNING_VALUE_TOO_LARGE', [string, number, number]>(
  'FST_LONG_RUNNING_VALUE_TOO_LARGE',
  'The %s has %d bytes, more than the store keeps (maxValueBytes: %d)',
  413
)

/** `store.create` with an id that exists already. */
export const JobExistsError = createError<'FST_LONG_RUNNING_JOB_EXISTS', [string]>(
  'FST_LONG_RUNNING_JOB_EXISTS',
  'Job %s exists'
)

/** A bad `request.longRunning.progress()` call: the handler's bug, thrown at the call. */
export const InvalidProgressError = createError<'FST_LONG_RUNNING_INVALID_PROGRESS', [string]>(
  'FST_LONG_RUNNING_INVALID_PROGRESS',
  'Expected %s',
  500,
  TypeError
)

/**
 * Why a running attempt's `signal` aborted besides a timeout or a cancellation: the process is
 * shutting down, the platform's deadline is near, or the claim was lost (another worker took it,
 * or its lease lapsed while the store could not be reached, so another worker may). The job
 * goes back to the queue; none of these is the job's final answer.
 */
export const WorkerStoppingError = createError('FST_LONG_RUNNING_WORKER_STOPPING', 'Worker shutting down')
export const WorkerDeadlineError = createError('FST_LONG_RUNNING_WORKER_DEADLINE', 'Worker out of time')
export const LeaseLostError = createError('FST_LONG_RUNNING_LEASE_LOST', 'Claim lost: the job was taken over, or its lease lapsed with no renewal through')

/**
 * A request body left unread by the route's parser (multipart, say) is longer than the route's
 * `bodyLimit`: a long-running route keeps the whole body for its job, so the route's own
 * `bodyLimit` bounds uploads that the multipart plugin's per-file limits would let through.
 */
export const BodyTooLargeError = createError<'FST_LONG_RUNNING_BODY_TOO_LARGE', [number]>(
  'FST_LONG_RUNNING_BODY_TOO_LARGE',
  'Request body is larger than the route\'s bodyLimit of %d bytes: a long-running route keeps the whole body for its job, uploads included; raise the route\'s bodyLimit',
  413
)

/**
 * A job's uploaded request body is no longer in the bucket (the lifecycle rule expired it while
 * the job waited, or someone removed it, or put another object under its key: S3's 412 on the
 * upload's ETag): the job can never run, and ends with this.
 */
export const UploadMissingError = createError('FST_LONG_RUNNING_UPLOAD_MISSING', 'The request\'s uploaded body is no longer in the bucket', 500)

/**
 * A job's request body was uploaded to a bucket by the HTTP side, and the worker has no `results`
 * bucket to read it from: a deployment's mistake (the worker must be given the HTTP side's
 * `results`), which no attempt of this worker can get past, so the job ends with this.
 */
export const UploadUnreadableError = createError<'FST_LONG_RUNNING_UPLOAD_UNREADABLE', [string]>(
  'FST_LONG_RUNNING_UPLOAD_UNREADABLE',
  'The request\'s body was uploaded to a bucket (%s) and this worker has no bucket to read it from: give the worker the same `results` option as the HTTP side',
  500
)

/** `carry` returned something that is not an object of JSON values: the app's bug. */
export const InvalidCarryError = createError<'FST_LONG_RUNNING_INVALID_CARRY', [string]>(
  'FST_LONG_RUNNING_INVALID_CARRY',
  'Expected `carry` to return an object of JSON values, got %s',
  500
)

/**
 * Idempotency-Key answers (draft-ietf-httpapi-idempotency-key-header), thrown to the app's error
 * handler like every error of the plugin: a key that is not a Structured Field string nor a bare
 * token, a key missing where the route requires one, a key reused with another request, and
 * (option `strict`) a retry while the key's job still runs.
 */
export const InvalidIdempotencyKeyError = createError<'FST_LONG_RUNNING_IDEMPOTENCY_KEY_INVALID', [string]>(
  'FST_LONG_RUNNING_IDEMPOTENCY_KEY_INVALID',
  'Expected `%s` to be one Structured Field string ("…") or token of 1 to 255 visible ASCII characters',
  400
)
export const IdempotencyKeyMissingError = createError<'FST_LONG_RUNNING_IDEMPOTENCY_KEY_MISSING', [string]>(
  'FST_LONG_RUNNING_IDEMPOTENCY_KEY_MISSING',
  'This operation requires an `%s` header',
  400
)
export const IdempotencyKeyReusedError = createError('FST_LONG_RUNNING_IDEMPOTENCY_KEY_REUSED', 'This idempotency key was used with another request', 422)
export const IdempotencyConflictError = createError('FST_LONG_RUNNING_IDEMPOTENCY_CONFLICT', 'The request with this idempotency key is still being processed', 409)

/** A result whose body is in S3, read by an app without the `results` option. */
export const ResultsUnavailableError = createError('FST_LONG_RUNNING_RESULTS_UNAVAILABLE', 'The result is stored outside and this app has no `results` option to hand it over', 500)
