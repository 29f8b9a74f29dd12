import { longRunning } from './plugin.js'

export default longRunning
export { longRunning }
export type { LongRunningDecorator, LongRunningStats } from './plugin.js'
export type { Binding, LongRunningOptions } from './options.js'
export type { IdempotencyOptions, LongRunningRouteOptions } from './route-options.js'
export type { LongRunningJob } from './job/context.js'
export { JobOutcome, type DeliveryLimits, type JobEndEvent } from './job/outcome.js'
export type { Headers, RequestSnapshot, StoredResponse, ExternalBody } from './core/wire.js'
export type { Clock } from './clock.js'
export { Backoff } from './retry.js'
export type { JobStatusBody } from './http/replies.js'
export * as errors from './errors.js'

export { memoryQueue, type MemoryQueueOptions } from './queue/memory-queue.js'
export type { JobQueue, Delivery, Disposition, Consumer, ConsumeOptions } from './queue/queue.js'
export { memoryStore, type MemoryStoreOptions } from './store/memory-store.js'
export { JobStatus, isExpired, type JobRecord, type JobProgress } from './core/job-state.js'
export type { JobStore, NewJob, ClaimResult, KeyReservation, StoreMemory, StoreStats } from './store/store.js'

export { sqsQueue, type SqsQueueOptions, type SqsJobQueue } from './queue/sqs-queue.js'
export { dynamoDbStore, type DynamoDbStoreOptions } from './store/dynamodb-store.js'
export { redisQueue, type RedisQueueOptions } from './queue/redis-queue.js'
export { redisStore, type RedisStoreOptions } from './store/redis-store.js'
export { s3Results, type S3ResultsOptions } from './results/s3-results.js'
export type { ResultBodies, UrlMethod } from './results/results.js'
export { createSqsHandler, type SqsEvent, type SqsRecord, type LambdaContext, type SqsBatchResponse } from './lambda/sqs-handler.js'
