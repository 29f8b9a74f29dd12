import t from 'tap'
import { memoryStore, type JobProgress } from '../../src/index.js'
import { sleep } from '../../src/clock.js'
import { decodeMessage } from '../../src/job/message.js'
import { progressReporter } from '../../src/job/progress.js'
import { buildTestApp, closeTestApp } from '../helpers/app.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { delivery, RecordingQueue } from '../helpers/recording-queue.js'
import { spyStore } from '../helpers/spy-store.js'

// Issue 28, point 1: progress writes are coalesced. On DynamoDB each is a billed write unit, and
// a handler reporting freely made 366 of them in 5 s.

t.test('issue 28: a 10 s job reporting every 10 ms writes at most 12 times, its last report stored before its result', async t => {
  const clock = new FakeClock()
  const memory = memoryStore({ clock })
  const writes: Array<{ at: number, progress: JobProgress }> = []
  let completedAt: number | undefined
  const store = spyStore(memory, {
    setProgress: async (id, owner, progress) => {
      t.equal(completedAt, undefined, 'no progress write after the result')
      writes.push({ at: clock.now(), progress })
      return await memory.setProgress(id, owner, progress)
    },
    complete: async (id, owner, response, expiresAt) => {
      completedAt = clock.now()
      return await memory.complete(id, owner, response, expiresAt)
    }
  })
  const queue = new RecordingQueue()
  const test = await buildTestApp({ queue, store, clock, waitSeconds: 0 }, (app, _gates, count) => {
    app.get('/chatty', { longRunning: true }, async (request) => {
      count('chatty')
      for (let ms = 10; ms <= 10_000; ms += 10) {
        await sleep(clock, 10)
        request.longRunning?.progress(ms / 10_000, `${ms} ms`)
      }
      return 'done'
    })
  })
  t.teardown(() => closeTestApp(test))
  const where = (await test.app.inject('/chatty')).headers.location as string
  const { id } = decodeMessage(queue.sent[0] as string)
  const handled = test.app.longRunning.handle(delivery(queue.sent[0] as string))
  await test.ran('chatty')
  const start = clock.now()
  await clock.advance(10_000)
  t.same(await handled, { ack: true })

  t.ok(writes.length <= 12, `${writes.length} writes`)
  t.ok(writes.length >= 10, 'about one a second')
  for (let i = 1; i < writes.length - 1; i++) {
    t.ok((writes[i]?.at ?? 0) - (writes[i - 1]?.at ?? 0) >= 1000, `write ${i} a second after the one before`)
  }
  t.same(writes.at(-1)?.progress, { fraction: 1, message: '10000 ms' }, 'the last report is the last write')
  t.ok((completedAt ?? 0) - start >= 10_000, 'then the result')
  t.equal((await test.app.inject(where)).body, 'done')
  t.same((await memory.get(id))?.progress, { fraction: 1, message: '10000 ms' }, 'the final progress is the one stored')
})

t.test('the reporter: the first report at once, repeats skipped, the latest written on settling, nothing after', async t => {
  const clock = new FakeClock()
  const written: JobProgress[] = []
  const log = { warn: () => {} } as unknown as Parameters<typeof progressReporter>[1]
  const reporter = progressReporter(async progress => { written.push(progress); return true }, log, clock)
  reporter.report(0.1)
  await new Promise(resolve => setImmediate(resolve))
  t.same(written, [{ fraction: 0.1 }], 'the first report at once')
  reporter.report(0.1)
  await clock.advance(5000)
  t.same(written, [{ fraction: 0.1 }], 'an unchanged value is no write')
  reporter.report(0.2, 'a')
  reporter.report(0.3, 'b')
  await new Promise(resolve => setImmediate(resolve))
  t.same(written.length, 2, 'a second after the last write: at once')
  reporter.report(0.4)
  reporter.report(0.5)
  await clock.advance(999)
  t.equal(written.length, 2, 'not within the second')
  await clock.advance(1)
  t.same(written.at(-1), { fraction: 0.5 }, 'the latest, once the second is up')
  reporter.report(0.6)
  reporter.report(0.5)
  await clock.advance(1000)
  t.equal(written.length, 3, 'back to the value written: nothing to write')
  reporter.report(0.9)
  await reporter.settle(true)
  t.same(written.at(-1), { fraction: 0.9 }, 'settling writes the latest at once')
  reporter.report(1)
  await clock.advance(5000)
  t.equal(written.length, 4, 'nothing after settling')
  t.equal(clock.pending, 0, 'no timer left')

  const stopped = progressReporter(async progress => { written.push(progress); return true }, log, clock)
  stopped.report(0.1)
  stopped.report(0.2)
  await stopped.settle(false)
  t.same(written.at(-1), { fraction: 0.1 }, 'a stopped attempt\'s latest report is not written')
  t.throws(() => stopped.report(2), { message: /fraction/ }, 'a bad report still throws after settling')
})

t.test('a write that fails is logged, and the next one still goes out', async t => {
  const clock = new FakeClock()
  const warnings: unknown[] = []
  const log = { warn: (...args: unknown[]) => warnings.push(args) } as unknown as Parameters<typeof progressReporter>[1]
  let calls = 0
  const reporter = progressReporter(async () => { calls++; throw new Error('throttled') }, log, clock)
  reporter.report(0.1)
  await new Promise(resolve => setImmediate(resolve))
  reporter.report(0.2)
  await clock.advance(1000)
  await reporter.settle(true)
  t.equal(calls, 2)
  t.equal(warnings.length, 2)
})
