// `npm run test:redis`'s coverage: the Redis adapters' sources, which `npm test` leaves out (it
// needs no Redis), counted by the tests that run them in this process. The tests that run the
// example or the package in child processes (compiled by tsx, as in test/coverage-map.mjs) count
// none. The thresholds (package.json's test:redis) are what the tests reach without chaos.test.ts
// (statements 98.8 %, branches 94.8 %), rounded down: the chaos run adds a few error paths, but
// which ones depends on when its faults land.
const REDIS_SOURCES = [
  'src/redis-client.ts',
  'src/store/redis-records.ts',
  'src/store/redis-scripts.ts',
  'src/store/redis-store.ts',
  'src/store/redis-watch.ts',
  'src/queue/redis-queue.ts',
  'src/queue/redis-consumer.ts'
]
const CHILD_PROCESS_TESTS = new Set(['test/redis/dev-redis.test.ts', 'test/redis/lazy-load.test.ts', 'test/redis/replicas.test.ts', 'test/redis/restart.test.ts'])

export default function coverageMap (testFile) {
  return CHILD_PROCESS_TESTS.has(testFile.replaceAll('\\', '/')) ? null : REDIS_SOURCES
}
