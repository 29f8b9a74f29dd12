import { newJobId } from '../core/job-id.js'
import { isCancellable, isClaimable, isExpired, isOwnedBy } from '../core/job-state.js'
import type { JobRecord, JobStore } from '../index.js'
import { FakeClock } from './fake-clock.js'
import { response, type StoreCheck } from './store-fixtures.js'

// The job state machine: every (status, owner, lease, expiry) case, and what each operation of
// the store may do in it. The memory store calls the rules of core/job-state.ts; the DynamoDB
// store sends them as condition expressions (dynamodb-conditions.ts), the Redis store as Lua.
// All run this table, so all decide every case alike. The store keeps time on a fake clock:
// expiry at `expiresAt` exactly is decided by the store's own now.

type State = Pick<JobRecord, 'status' | 'owner' | 'leaseUntil' | 'expiresAt'>
interface Operation { rule: (state: State) => boolean, run: (id: string) => Promise<boolean> }

/** The states, at t1 (`t0` + 1 s), when the operations run. */
function statesAt (t1: number): Record<string, State> {
  const far = t1 + 60_000
  return {
    pending: { status: 'pending', expiresAt: far },
    'running, lease live': { status: 'running', owner: 'a', leaseUntil: t1 + 30_000, expiresAt: far },
    'running, lease ends now': { status: 'running', owner: 'a', leaseUntil: t1, expiresAt: far },
    'running, lease lapsed': { status: 'running', owner: 'a', leaseUntil: t1 - 1, expiresAt: far },
    done: { status: 'done', expiresAt: far },
    'pending, expires now': { status: 'pending', expiresAt: t1 },
    'running, expires now': { status: 'running', owner: 'a', leaseUntil: t1 + 30_000, expiresAt: t1 }
  }
}

/** Each operation on a job, as the store runs it at t1, and the rule that says whether it may. */
function operationsAt (store: JobStore, t1: number): Record<string, Operation> {
  const far = t1 + 60_000
  return {
    'claim(b)': { rule: state => isClaimable(state, t1), run: async id => (await store.claim(id, { owner: 'b', leaseUntil: t1 + 30_000, now: t1 })).claimed },
    'renew(a)': { rule: state => isOwnedBy(state, 'a'), run: async id => await store.renew(id, 'a', t1 + 30_000) },
    'renew(b)': { rule: state => isOwnedBy(state, 'b'), run: async id => await store.renew(id, 'b', t1 + 30_000) },
    'progress(a)': { rule: state => isOwnedBy(state, 'a'), run: async id => await store.setProgress(id, 'a', { fraction: 0.5 }) },
    'complete(a)': { rule: state => isOwnedBy(state, 'a'), run: async id => await store.complete(id, 'a', response(Buffer.from('a')), far) },
    'complete(b)': { rule: state => isOwnedBy(state, 'b'), run: async id => await store.complete(id, 'b', response(Buffer.from('b')), far) },
    cancel: { rule: state => isCancellable(state), run: async id => await store.cancel(id, response(Buffer.from('c')), far) }
  }
}

/** The expected outcome of every operation in every state, spelt out: `y` it succeeds, `-` it changes nothing. */
const TABLE = {
  // claim(b) renew(a) renew(b) progress(a) complete(a) complete(b) cancel
  pending: 'y - - - - - y',
  'running, lease live': '- y - y y - y',
  'running, lease ends now': '- y - y y - y',
  'running, lease lapsed': 'y y - y y - y',
  done: '- - - - - - -',
  'pending, expires now': '- - - - - - -',
  'running, expires now': '- - - - - - -'
}

export const stateMachine: StoreCheck = async (t, { make }) => {
  const clock = new FakeClock()
  const store = await make(clock)
  const t0 = clock.now()
  const t1 = t0 + 1000
  const states = statesAt(t1)
  const operations = operationsAt(store, t1)
  // Each (state, operation) on a job of its own, set up at t0; then time moves to t1.
  const jobs = new Map<string, string>()
  for (const [name, state] of Object.entries(states)) {
    for (const operation of Object.keys(operations)) {
      const id = newJobId()
      jobs.set(`${name} / ${operation}`, id)
      await store.create({ id, waitSeconds: 1, createdAt: t0, expiresAt: state.expiresAt })
      if (state.status === 'pending') continue
      t.ok((await store.claim(id, { owner: 'a', leaseUntil: state.leaseUntil ?? t1, now: t0 })).claimed)
      if (state.status === 'done') t.ok(await store.complete(id, 'a', response(Buffer.from('done')), t1 + 60_000))
    }
  }
  await clock.advance(t1 - t0)
  const decided: Record<string, string> = {}
  const ruled: Record<string, string> = {}
  for (const [name, state] of Object.entries(states)) {
    const row: string[] = []
    const expected: string[] = []
    for (const [operation, { rule, run }] of Object.entries(operations)) {
      row.push(await run(jobs.get(`${name} / ${operation}`) as string) ? 'y' : '-')
      expected.push(!isExpired(state, t1) && rule(state) ? 'y' : '-')
    }
    decided[name] = row.join(' ')
    ruled[name] = expected.join(' ')
  }
  t.same(decided, TABLE, 'the store decides every case as the table says')
  t.same(ruled, TABLE, 'and so do the rules of core/job-state.ts')
}
