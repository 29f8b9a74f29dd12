import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'

// The published shape: `npm test` builds dist/ first; both module systems load it by name.
const run = promisify(execFile)
const env = { PATH: process.env.PATH }

t.test('import and require() both load the package by its name', async t => {
  const script = "const m = %LOAD%; if (typeof m.default !== 'function' || typeof m.memoryQueue !== 'function') process.exit(1)"
  await run(process.execPath, ['--input-type=module', '-e', script.replace('%LOAD%', "await import('fastify-long-running')")], { env })
  const { stderr } = await run(process.execPath, ['-e', script.replace('%LOAD%', "require('fastify-long-running')")], { env })
  t.notMatch(stderr, /Error/)
  t.pass('loaded')
})
