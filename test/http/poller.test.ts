import pino from 'pino'
import t from 'tap'
import { Poller, pollIntervalMs } from '../../src/http/poller.js'
import { memoryStore, type JobRecord, type JobStore } from '../../src/index.js'
import { newJobId } from '../../src/core/job-id.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { spyStore } from '../helpers/spy-store.js'

// The shared poller of stores that cannot notify, on a fake clock: reads are counted, not timed.
// A job ending at age T must be read within 100 ms + 1 % of T (less the answer's margin), and the
// reads of one waiting request must grow with the logarithm of the job's length.

const log = pino({ level: 'silent' })

/** A store (no change feed) holding jobs that end at the given age; every read is counted. */
async function setup (endsAt: Map<string, number>, clock: FakeClock): Promise<{ poller: Poller, reads: number[], store: JobStore, batches: number[] }> {
  const memory = memoryStore({ clock })
  const reads: number[] = []
  const batches: number[] = []
  const store = spyStore(memory, {
    watch: undefined,
    getMany: async (ids) => {
      batches.push(ids.length)
      const found = new Map<string, JobRecord>()
      for (const id of ids) {
        reads.push(clock.now())
        const record = await memory.get(id) as JobRecord
        const end = endsAt.get(id) as number
        found.set(id, clock.now() - record.createdAt >= end ? { ...record, status: 'done', response: { statusCode: 200, headers: {}, body: Buffer.from('ok') } } : { ...record, status: 'running' })
      }
      return found
    }
  })
  return { poller: new Poller(store, { baseMs: 100, clock, log }), reads, store, batches }
}

/** Watches one job of length `seconds` until done; the times of its reads and when it was delivered. */
async function waitFor (seconds: number): Promise<{ reads: number[], deliveredAfterEndMs: number, gaps: Array<[number, number]> }> {
  const clock = new FakeClock()
  const id = newJobId()
  const { poller, reads, store } = await setup(new Map([[id, seconds * 1000]]), clock)
  const created = await store.create({ id, waitSeconds: 25, createdAt: clock.now(), expiresAt: clock.now() + 3_600_000 })
  const delivery = { at: -1 }
  poller.watch(id, record => { if (record?.status === 'done') delivery.at = clock.now() }, created)
  while (delivery.at < 0) await clock.advance(10)
  const delivered = delivery.at
  const gaps = reads.map((at, i): [number, number] => [at - created.createdAt, at - (reads[i - 1] ?? created.createdAt)])
  return { reads, deliveredAfterEndMs: delivered - created.createdAt - seconds * 1000, gaps }
}

t.test('reads by the job\'s age: within the delivery budget, about 100 × ln(1 + t / 8.5 s) of them', async t => {
  for (const [seconds, maxReads] of [[0.05, 2], [1, 12], [10, 80], [600, 450]] as const) {
    const { reads, deliveredAfterEndMs, gaps } = await waitFor(seconds)
    t.ok(reads.length <= maxReads, `${seconds} s job: ${reads.length} reads (≤ ${maxReads})`)
    t.ok(deliveredAfterEndMs <= 100 - 15 + seconds * 10, `${seconds} s job: delivered ${deliveredAfterEndMs} ms after its end`)
    // Every gap between reads is within the budget at the age it ends (reads are on a 10 ms grid here).
    const over = gaps.filter(([age, gap]) => gap > pollIntervalMs(age, 100) + 10)
    t.same(over, [], `${seconds} s job: no gap over its budget`)
  }
  t.equal(pollIntervalMs(0, 100), 85)
  t.equal(pollIntervalMs(60_000, 100), 685)
  t.equal(pollIntervalMs(3_600_000, 100), 10_000, 'capped')
  t.equal(pollIntervalMs(0, 10), 5, 'never below 5 ms')
})

t.test('requests waiting on jobs of similar age share each read', async t => {
  const clock = new FakeClock()
  const ids = Array.from({ length: 50 }, () => newJobId())
  const { poller, store, batches } = await setup(new Map(ids.map(id => [id, 5000])), clock)
  const done = { count: 0 }
  for (const [i, id] of ids.entries()) {
    const created = await store.create({ id, waitSeconds: 25, createdAt: clock.now(), expiresAt: clock.now() + 3_600_000 })
    for (let w = 0; w < 2; w++) poller.watch(id, record => { if (record?.status === 'done') done.count += 1 }, created)
    if (i % 10 === 9) await clock.advance(7) // jobs accepted a few ms apart
  }
  while (done.count < 100) await clock.advance(10)
  const reads = batches.reduce((sum, size) => sum + size, 0)
  t.ok(batches.length <= reads / 20, `${batches.length} batches for 50 jobs of 5 s`)
  t.ok(reads <= 50 * 60, `${reads} reads: per job, not per waiting request`)
})

t.test('a result stored by a worker of this process reaches its waiters with no read; a stopped watch stops reading', async t => {
  const clock = new FakeClock()
  const id = newJobId()
  const other = newJobId()
  const { poller, reads, store } = await setup(new Map([[id, 60_000], [other, 60_000]]), clock)
  const created = await store.create({ id, waitSeconds: 25, createdAt: clock.now(), expiresAt: clock.now() + 3_600_000 })
  const seen: Array<JobRecord | undefined> = []
  const stopFirst = poller.watch(id, record => seen.push(record), { ...created, status: 'running', owner: 'w', leaseUntil: clock.now() + 30_000 })
  poller.completed(id, { statusCode: 201, headers: { 'x-a': '1' }, body: Buffer.from('result') }, clock.now() + 60_000)
  t.equal(reads.length, 0)
  t.match(seen, [{ id, status: 'done', response: { statusCode: 201 } }])
  t.notOk('owner' in (seen[0] as object) || 'leaseUntil' in (seen[0] as object), 'no claim on a finished job')
  poller.completed(other, { statusCode: 200, headers: {}, body: Buffer.alloc(0) }, 0)
  t.equal(seen.length, 1, 'jobs nobody here waits for are ignored')
  stopFirst()

  const stop = poller.watch(other, () => {}, await store.create({ id: other, waitSeconds: 25, createdAt: clock.now(), expiresAt: clock.now() + 3_600_000 }))
  await clock.advance(1000)
  const before = reads.length
  t.ok(before > 0)
  stop()
  await clock.advance(10_000)
  t.equal(reads.length, before, 'no reads once nobody waits')
})

t.test('a young job joining an old one is read on its own, earlier schedule', async t => {
  const clock = new FakeClock()
  const old = newJobId()
  const young = newJobId()
  const { poller, store, batches } = await setup(new Map([[old, 3_600_000], [young, 3_600_000]]), clock)
  const oldRecord = await store.create({ id: old, waitSeconds: 25, createdAt: clock.now() - 600_000, expiresAt: clock.now() + 3_600_000 })
  poller.watch(old, () => {}, oldRecord)
  await clock.advance(1000)
  t.same(batches, [], 'the 10-minute-old job is next read in about 6 s')
  poller.watch(young, () => {}, await store.create({ id: young, waitSeconds: 25, createdAt: clock.now(), expiresAt: clock.now() + 3_600_000 }))
  await clock.advance(85)
  t.same(batches, [1], 'the new job, 85 ms after it started')
})

t.test('a failed read is logged and the job read again on its schedule', async t => {
  const clock = new FakeClock()
  const memory = memoryStore({ clock })
  let fail = true
  let calls = 0
  const warnings: unknown[] = []
  const store = spyStore(memory, {
    watch: undefined,
    getMany: undefined,
    get: async (id) => {
      calls += 1
      if (fail) throw new Error('throttled')
      return await memory.get(id)
    }
  })
  const poller = new Poller(store, { baseMs: 100, clock, log: { warn: (...args: unknown[]) => warnings.push(args) } as unknown as pino.Logger })
  const id = newJobId()
  const created = await memory.create({ id, waitSeconds: 25, createdAt: clock.now(), expiresAt: clock.now() + 3_600_000 })
  const seen: Array<JobRecord | undefined> = []
  poller.watch(id, record => seen.push(record), created)
  const gone: Array<JobRecord | undefined> = []
  poller.watch(newJobId(), record => gone.push(record), { ...created, id: newJobId() })
  await clock.advance(100)
  t.equal(calls, 2)
  t.equal(warnings.length, 1)
  fail = false
  await clock.advance(100)
  t.equal(calls, 4, 'read again, with get() when the store has no getMany')
  t.match(seen, [{ id, status: 'pending' }])
  t.same(gone, [undefined], 'a job the store does not know is gone')
})
