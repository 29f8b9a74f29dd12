import type { JobStore } from '../../src/index.js'

/** `store` with some methods replaced; the others still call the real store. */
export function spyStore (store: JobStore, overrides: Partial<JobStore>): JobStore {
  const bound: Record<string, unknown> = {}
  for (const name of ['create', 'reserveKey', 'get', 'getMany', 'claim', 'renew', 'setProgress', 'complete', 'cancel', 'delete', 'watch', 'close'] as const) {
    const method = store[name]
    if (typeof method === 'function') bound[name] = method.bind(store)
  }
  return { ...bound, ...overrides } as unknown as JobStore
}
