import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'

// The published shape: `npm test` builds dist/ first; both module systems load each entry by name.
const run = promisify(execFile)
const env = { PATH: process.env.PATH }

const ENTRIES = [
  { name: 'fastify-long-running', what: 'the plugin, the adapters and the errors', members: ['default', 'memoryQueue', 'errors.JobNotFoundError'] },
  { name: 'fastify-long-running/client', what: 'the client', members: ['fetchLongRunning'] },
  { name: 'fastify-long-running/testing', what: 'the contract suites', members: ['storeContract', 'queueContract', 'resultsContract', 'FakeClock'] }
]

for (const { name, what, members } of ENTRIES) {
  t.test(`import and require() both load ${name}: ${what}`, async t => {
    const script = (load: string): string => `const m = ${load}; console.log(${members.map(member => `typeof m.${member}`).join(', ')})`
    const imported = await run(process.execPath, ['--input-type=module', '-e', script(`await import('${name}')`)], { env })
    const required = await run(process.execPath, ['-e', script(`require('${name}')`)], { env })
    for (const [how, { stdout, stderr }] of [['import', imported], ['require', required]] as const) {
      t.equal(stdout, `${members.map(() => 'function').join(' ')}\n`, `${how}: ${what}`)
      t.notMatch(stderr, /Error/, `${how}: no error printed`)
    }
  })
}
