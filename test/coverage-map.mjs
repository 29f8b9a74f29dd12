// Which source files each test's coverage counts: all of them (`[]`), except for tests that
// run the code in child processes compiled by another loader or from dist/ (`null`), whose
// coverage would otherwise be merged, garbled, into that of src/. `null` also turns coverage off
// in a test's children (tap passes it on to them): types.test.ts runs no source, only tsc, which
// otherwise counted every block of the compiler (about 8 s of CPU).
const CHILD_PROCESS_TESTS = new Set(['test/process/npm-start.test.ts', 'test/process/package.test.ts', 'test/process/worker.test.ts', 'test/process/crash.test.ts', 'test/process/crash-keys.test.ts', 'test/process/installed.test.ts', 'test/process/dev-aws.test.ts', 'test/ecosystem/types.test.ts'])

export default function coverageMap (testFile) {
  return CHILD_PROCESS_TESTS.has(testFile.replaceAll('\\', '/')) ? null : []
}
