import Fastify from 'fastify'
import { describe, expect, test } from 'tstyche'
import longRunning, {
  type Clock,
  JobStatus, memoryQueue, memoryStore, type Disposition, type JobEndEvent, type JobQueue, type JobRecord, type LongRunningJob, type LongRunningOptions,
  type NewJob, type JobStore
} from '../../src/index.js'

describe('route option', () => {
  const app = Fastify()
  test('true, false or per-route timing on any route', () => {
    expect(app.get('/a', { longRunning: true }, async () => 'a')).type.not.toRaiseError()
    expect(app.post('/b', { longRunning: { waitSeconds: 5, timeoutSeconds: 60, maxAttempts: 2 } }, async () => 'b')).type.not.toRaiseError()
    expect(app.post('/k', { longRunning: { idempotency: { header: 'x-key', required: true, strict: true } } }, async () => 'k')).type.not.toRaiseError()
    expect(app.post('/l', { longRunning: { idempotency: false } }, async () => 'l')).type.not.toRaiseError()
    expect(app.route({ method: 'PUT', url: '/c', longRunning: false, handler: async () => 'c' })).type.not.toRaiseError()
  })
  test('anything else is a type error', () => {
    expect(app.get('/d', { longRunning: 'yes' }, async () => 'd')).type.toRaiseError()
    expect(app.get('/e', { longRunning: { waitSecs: 5 } }, async () => 'e')).type.toRaiseError()
    expect(app.post('/f', { longRunning: { idempotency: { header: 5 } } }, async () => 'f')).type.toRaiseError()
  })
})

describe('request.longRunning', () => {
  test('the job inside a run, null otherwise', () => {
    Fastify().get('/', { longRunning: true }, async (request) => {
      expect(request.longRunning).type.toBe<LongRunningJob | null>()
      const job = request.longRunning
      if (job === null) return
      expect(job.id).type.toBe<string>()
      expect(job.attempt).type.toBe<number>()
      expect(job.signal).type.toBe<AbortSignal>()
      expect(job.progress(0.5, 'half')).type.toBe<void>()
      expect(job.progress('half')).type.toRaiseError()
    })
  })
})

describe('plugin options and decorators', () => {
  test('options are typed', async () => {
    const app = Fastify()
    expect(await app.register(longRunning, { waitSeconds: 10, queue: memoryQueue(), store: memoryStore(), bindTo: (request) => request.id })).type.not.toRaiseError()
    expect(app.register(longRunning, { waitSeconds: '10' })).type.toRaiseError()
    expect<LongRunningOptions>().type.not.toHaveProperty('unknownOption')
  })
  test('app.longRunning runs deliveries', () => {
    const app = Fastify()
    expect(app.longRunning.handle({ body: '', receiveCount: 1, extend: async () => {} })).type.toBe<Promise<Disposition>>()
    expect(app.longRunning.store).type.toBe<JobStore>()
    expect(app.longRunning.queue).type.toBe<JobQueue>()
    expect(app.longRunning.clock).type.toBe<Clock>()
  })
})

describe('adapter contracts', () => {
  test('a user can write a queue against the types alone', () => {
    const queue: JobQueue = {
      maxMessageBytes: 1024,
      send: async (_body: string) => {},
      consume: () => ({ stop: async () => {} })
    }
    expect(queue).type.toBeAssignableTo<LongRunningOptions['queue']>()
    expect({ send: async () => {} }).type.not.toBeAssignableTo<JobQueue>()
  })
  test('a store written against the types alone fits the option', () => {
    const store: JobStore = {
      create: async (job) => ({ id: job.id, status: JobStatus.pending, attempt: 0, waitSeconds: job.waitSeconds, createdAt: job.createdAt, expiresAt: job.expiresAt }),
      reserveKey: async (reservation) => reservation,
      get: async () => undefined,
      claim: async () => ({ claimed: false }),
      renew: async () => false,
      setProgress: async () => false,
      complete: async () => false,
      cancel: async () => false,
      delete: async () => {}
    }
    expect(store).type.toBeAssignableTo<LongRunningOptions['store']>()
    expect({ get: async () => undefined }).type.not.toBeAssignableTo<JobStore>()
    expect<JobStore['create']>().type.toBe<(job: NewJob) => Promise<JobRecord>>()
  })
  test('onJobEnd hears a typed event', () => {
    expect<LongRunningOptions['onJobEnd']>().type.toBe<((event: JobEndEvent) => void) | undefined>()
  })
  test('the built-in adapters satisfy their contracts', () => {
    expect(memoryStore()).type.toBe<JobStore>()
    expect(memoryQueue()).type.toBe<JobQueue>()
  })
})
