import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'

// The published shape: `npm test` builds dist/ first; both module systems load it by name.
const run = promisify(execFile)
const env = { PATH: process.env.PATH }

t.test('import and require() both load the package by its name', async t => {
  const script = 'const m = %LOAD%; console.log(typeof m.default, typeof m.memoryQueue, typeof m.errors.JobNotFoundError)'
  const imported = await run(process.execPath, ['--input-type=module', '-e', script.replace('%LOAD%', "await import('fastify-long-running')")], { env })
  const required = await run(process.execPath, ['-e', script.replace('%LOAD%', "require('fastify-long-running')")], { env })
  for (const [how, { stdout, stderr }] of [['import', imported], ['require', required]] as const) {
    t.equal(stdout, 'function function function\n', `${how}: the plugin, the adapters and the errors`)
    t.notMatch(stderr, /Error/, `${how}: no error printed`)
  }
})

t.test('the client loads by its subpath, with import and require()', async t => {
  const script = 'const m = %LOAD%; console.log(typeof m.fetchLongRunning)'
  const imported = await run(process.execPath, ['--input-type=module', '-e', script.replace('%LOAD%', "await import('fastify-long-running/client')")], { env })
  const required = await run(process.execPath, ['-e', script.replace('%LOAD%', "require('fastify-long-running/client')")], { env })
  t.equal(imported.stdout, 'function\n')
  t.equal(required.stdout, 'function\n')
})

t.test('the contract suites load by their subpath, with import and require()', async t => {
  const script = 'const m = %LOAD%; console.log(typeof m.storeContract, typeof m.queueContract, typeof m.resultsContract, typeof m.FakeClock)'
  const imported = await run(process.execPath, ['--input-type=module', '-e', script.replace('%LOAD%', "await import('fastify-long-running/testing')")], { env })
  const required = await run(process.execPath, ['-e', script.replace('%LOAD%', "require('fastify-long-running/testing')")], { env })
  t.equal(imported.stdout, 'function function function function\n')
  t.equal(required.stdout, 'function function function function\n')
})
