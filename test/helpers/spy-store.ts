import type { JobStore, NewJob, RequestSnapshot } from '../../src/index.js'
import { decodeMessage } from '../../src/job/message.js'

/** `store` with some methods replaced; the others still call the real store. */
export function spyStore (store: JobStore, overrides: Partial<JobStore>): JobStore {
  const bound: Record<string, unknown> = {}
  for (const name of ['create', 'reserveKey', 'get', 'getMany', 'claim', 'renew', 'setProgress', 'complete', 'cancel', 'delete', 'watch', 'close'] as const) {
    const method = store[name]
    if (typeof method === 'function') bound[name] = method.bind(store)
  }
  return { ...bound, ...overrides } as unknown as JobStore
}

/**
 * `store` recording every job it creates: the request of a job whose message only points at it
 * (the embedded default keeps every request) is read from there. The store's memory budget stays.
 */
export function recordingStore (store: JobStore): { store: JobStore, created: NewJob[], requestOf: (message: string) => RequestSnapshot | undefined } {
  const created: NewJob[] = []
  const recording = spyStore(store, {
    create: async job => {
      created.push(job)
      return await store.create(job)
    }
  })
  Object.assign(recording, { memory: store.memory, delivered: store.delivered?.bind(store) })
  const requestOf = (message: string): RequestSnapshot | undefined => {
    const decoded = decodeMessage(message)
    return decoded.request ?? created.find(job => job.id === decoded.id)?.request
  }
  return { store: recording, created, requestOf }
}
