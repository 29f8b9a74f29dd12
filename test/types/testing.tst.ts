import t from 'tap'
import { describe, expect, test } from 'tstyche'
import { memoryQueue, memoryStore, type Clock, type ResultBodies } from 'fastify-long-running'
import { FakeClock, queueContract, resultsContract, storeContract } from 'fastify-long-running/testing'

// The contract suites' types as a backend author's project sees them: by the package's name,
// through its `exports` (dist/, which `npm test` builds first), with tap's own `Test`.
describe('fastify-long-running/testing', () => {
  test('each suite takes a tap test and a factory of its contract', () => {
    expect(storeContract).type.toBeCallableWith(t, async (clock?: Clock) => memoryStore({ clock }))
    expect(storeContract).type.toBeCallableWith(t, async () => memoryStore(), { count: async (id: string) => id.length, outOfLine: true })
    expect(queueContract).type.toBeCallableWith(t, async () => memoryQueue())
    expect(resultsContract).type.toBeCallableWith(t, async () => ({}) as ResultBodies)
  })
  test('a factory of another contract is refused', () => {
    expect(storeContract).type.not.toBeCallableWith(t, async () => memoryQueue())
    expect(queueContract).type.not.toBeCallableWith(t, async () => memoryStore())
  })
  test('FakeClock is a Clock, to hand to an adapter\'s clock option', () => {
    expect(new FakeClock()).type.toBeAssignableTo<Clock>()
    expect(new FakeClock({ autoAdvanceUpToMs: 10 }).advance(5)).type.toBe<Promise<void>>()
  })
})
