// Which source files each test's coverage counts: all of them (`[]`), except for tests that
// run the code in child processes compiled by another loader or from dist/ (`null`), whose
// coverage would otherwise be merged, garbled, into that of src/.
const CHILD_PROCESS_TESTS = new Set(['test/npm-start.test.ts', 'test/package.test.ts', 'test/worker.test.ts', 'test/crash.test.ts', 'test/crash-keys.test.ts', 'test/idempotency-example.test.ts', 'test/large-results-example.test.ts', 'test/client-example.test.ts'])

export default function coverageMap (testFile) {
  return CHILD_PROCESS_TESTS.has(testFile.replaceAll('\\', '/')) ? null : []
}
