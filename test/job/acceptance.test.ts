import t, { type Test } from 'tap'
import fastify from 'fastify'
import { memoryQueue, memoryStore, JobStatus, type JobQueue, type JobStore } from '../../src/index.js'
import { newJobId } from '../../src/core/job-id.js'
import { acceptJob, acceptKeyed, type AcceptSettings, type NewRequest } from '../../src/job/acceptance.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { RecordingQueue } from '../helpers/recording-queue.js'
import { spyStore } from '../helpers/spy-store.js'
import { pollUntil } from '../helpers/poll.js'
import { downMemoryQueue } from '../helpers/down-queue.js'

// Accepting requests as jobs, on its own, with the memory adapters and the fake clock: a job is
// either in the store and the queue, or nowhere; a key runs its job once.

const log = fastify().log

function settingsOf (t: Test, parts: { store?: JobStore, queue?: JobQueue } = {}): AcceptSettings & { clock: FakeClock } {
  // Back-offs of retried sends and writes cost nothing.
  const clock = new FakeClock({ autoAdvanceUpToMs: 5_000 })
  const store = parts.store ?? memoryStore({ clock })
  const queue = parts.queue ?? memoryQueue()
  t.teardown(async () => {
    await queue.close?.()
    await store.close?.()
  })
  return { store, queue, clock, resultTtlSeconds: 60, leaseSeconds: 30 }
}

function requestOf (body = 'amount=10'): NewRequest {
  return {
    request: { method: 'POST', url: '/pay', headers: { 'content-type': 'text/plain' }, body: Buffer.from(body) },
    timing: { waitSeconds: 5, timeoutSeconds: 60, maxAttempts: 3 }
  }
}

const keyed = { key: 'key-digest', fingerprint: 'request-digest' }

t.test('an accepted job is pending in the store and its message is in the queue', async t => {
  const settings = settingsOf(t)
  const record = await acceptJob(settings, requestOf(), log)
  t.equal(record.status, JobStatus.pending)
  t.equal((await settings.store.get(record.id))?.status, JobStatus.pending)
  t.equal(settings.queue.queued?.(), 1)
})

t.test('a job whose message cannot be queued is not left behind: the client gets a 503 and no id', async t => {
  const queue = new RecordingQueue()
  queue.failSends = true
  const created: string[] = []
  const clock = new FakeClock()
  const memory = memoryStore({ clock })
  const store = spyStore(memory, { create: async job => { created.push(job.id); return await memory.create(job) } })
  const settings = settingsOf(t, { store, queue })
  await t.rejects(acceptJob(settings, requestOf(), log), { code: 'FST_LONG_RUNNING_ENQUEUE_FAILED', statusCode: 503, headers: { 'retry-after': '1' } })
  t.equal(queue.attempts, 3, 'the send was tried again first')
  t.equal(created.length, 1)
  t.equal(await memory.get(created[0] as string), undefined, 'the job is gone')
})

t.test('one key: the first request creates the job, a retry attaches to it, another request under the key is refused', async t => {
  const settings = settingsOf(t)
  const first = await acceptKeyed(settings, requestOf(), keyed, log)
  t.equal(first.kind, 'created')
  const again = await acceptKeyed(settings, requestOf(), keyed, log)
  t.equal(again.kind, 'attached')
  t.equal(first.kind === 'created' && again.kind === 'attached' && first.record.id === again.record.id, true, 'the same job')
  t.same(await acceptKeyed(settings, requestOf('amount=99'), { ...keyed, fingerprint: 'another-digest' }, log), { kind: 'mismatch' })
  t.equal(settings.queue.queued?.(), 1, 'one message: an in-process queue is not sent to again')
})

t.test('a key reserved by a request that died before creating its job: the next request creates it, under the reserved id', async t => {
  const settings = settingsOf(t)
  const orphan = newJobId()
  await settings.store.reserveKey({ ...keyed, jobId: orphan, expiresAt: settings.clock.now() + 60_000 })
  const next = await acceptKeyed(settings, requestOf(), keyed, log)
  t.equal(next.kind, 'created')
  t.equal(next.kind === 'created' ? next.record.id : undefined, orphan)
  t.equal(settings.queue.queued?.(), 1, 'and queues it')
})

t.test('a keyed job whose send failed stays for the retry with its key, which queues it; no removal could pull it from under that retry', async t => {
  const queue = new RecordingQueue()
  const memory = memoryStore()
  let deletes = 0
  const store = spyStore(memory, { delete: async id => { deletes += 1; await memory.delete(id) } })
  const settings = settingsOf(t, { store, queue })
  queue.failSends = true
  await t.rejects(acceptKeyed(settings, requestOf(), keyed, log), { code: 'FST_LONG_RUNNING_ENQUEUE_FAILED' })
  t.equal(deletes, 0, 'not removed')
  // The queue still down: the retry is refused too, not told 202 for a job nobody queued.
  await t.rejects(acceptKeyed(settings, requestOf(), keyed, log), { code: 'FST_LONG_RUNNING_ENQUEUE_FAILED' })
  queue.failSends = false
  const retry = await acceptKeyed(settings, requestOf(), keyed, log)
  t.equal(retry.kind, 'attached', 'the retry finds the job')
  t.equal(queue.sent.length, 1, 'and queues it')
  const id = retry.kind === 'attached' ? retry.record.id : 'none'
  t.equal(JSON.parse(queue.sent[0] as string).id, id)
  t.equal((await store.get(id))?.status, JobStatus.pending, 'the job is there to run')
  t.equal(deletes, 0)
})

t.test('on an in-process queue a keyed job that could not be queued goes: nothing would send it again', async t => {
  const { queue, up } = downMemoryQueue()
  const settings = settingsOf(t, { queue })
  await t.rejects(acceptKeyed(settings, requestOf(), keyed, log), { code: 'FST_LONG_RUNNING_ENQUEUE_FAILED' })
  up()
  t.equal((await acceptKeyed(settings, requestOf(), keyed, log)).kind, 'created', 'the retry is a new request')
})

t.test('a job without a key whose removal failed is removed in the background: nobody could find it again', async t => {
  const queue = new RecordingQueue()
  const memory = memoryStore()
  let deletes = 0
  const store = spyStore(memory, {
    delete: async id => {
      deletes += 1
      if (deletes === 1) throw new Error('store hung')
      await memory.delete(id)
    }
  })
  const settings = settingsOf(t, { store, queue })
  queue.failSends = true
  const created: string[] = []
  const creating = spyStore(store, { create: async job => { created.push(job.id); return await store.create(job) } })
  await t.rejects(acceptJob({ ...settings, store: creating }, requestOf(), log), { code: 'FST_LONG_RUNNING_ENQUEUE_FAILED' })
  await pollUntil(async () => deletes, count => count === 2)
  t.pass('tried again')
  t.equal(await memory.get(created[0] as string), undefined, 'gone')
})
