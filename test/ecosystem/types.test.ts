import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'

// A consumer's TypeScript, strict and with `skipLibCheck` off, under each module resolution a
// project uses (node16 resolves as nodenext does): the package's declarations (dist/, built by
// `npm test` first) must compile and keep their types (`errors.*` never `any`). Issue 25, point
// 6: under `bundler` the declarations named a namespace that only CommonJS interop provides.
const run = promisify(execFile)
// Each compile reads the declarations of Fastify and the AWS SDK: seconds each, more on a busy machine.
t.setTimeout(600_000)
const ROOT = resolve('.')
const TSC = join(ROOT, 'node_modules', '.bin', 'tsc')

const CONSUMER = `
import Fastify from 'fastify'
import longRunning, { errors, sqsQueue, type JobStore } from 'fastify-long-running'
import { fetchLongRunning } from 'fastify-long-running/client'

const app = Fastify()
await app.register(longRunning, { waitSeconds: 5, queue: sqsQueue({ queueUrl: 'https://sqs.invalid/1/q' }) })
app.get('/report', { longRunning: { timeoutSeconds: 60 } }, async request => request.longRunning?.id)
const status: 404 = new errors.JobNotFoundError().statusCode
// @ts-expect-error a code is its literal type, not any
const wrong: 'SOMETHING_ELSE' = new errors.JobNotFoundError().code
const store: JobStore | undefined = undefined
export { fetchLongRunning, status, wrong, store }
`

/** A folder whose node_modules holds this package (by its name) and what its types import. */
async function consumerFolder (t: Test): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), 'flr-types-'))
  t.teardown(async () => await rm(folder, { recursive: true, force: true }))
  await mkdir(join(folder, 'node_modules'))
  await symlink(ROOT, join(folder, 'node_modules', 'fastify-long-running'))
  await symlink(join(ROOT, 'node_modules', 'fastify'), join(folder, 'node_modules', 'fastify'))
  return folder
}

const CJS_CONSUMER = `
import longRunning = require('fastify-long-running')
import client = require('fastify-long-running/client')
const status: 404 = new longRunning.errors.JobNotFoundError().statusCode
export = { plugin: longRunning.default, fetchLongRunning: client.fetchLongRunning, status }
`

const MODES = [
  { name: 'bundler', module: 'esnext', moduleResolution: 'bundler', file: 'consumer.ts', text: CONSUMER },
  { name: 'nodenext-esm', module: 'nodenext', moduleResolution: 'nodenext', file: 'consumer.mts', text: CONSUMER },
  // require() of the ESM package, as Node >= 20.19 and TypeScript's nodenext allow it.
  { name: 'nodenext-cjs', module: 'nodenext', moduleResolution: 'nodenext', file: 'consumer.cts', text: CJS_CONSUMER }
]

t.test('strict consumers compile with skipLibCheck off: moduleResolution bundler, nodenext (ESM) and CommonJS', async t => {
  const folder = await consumerFolder(t)
  for (const mode of MODES) {
    await mkdir(join(folder, mode.name))
    await writeFile(join(folder, mode.name, mode.file), mode.text)
    const compilerOptions = { strict: true, noEmit: true, skipLibCheck: false, module: mode.module, moduleResolution: mode.moduleResolution, target: 'es2022', types: [] }
    await writeFile(join(folder, mode.name, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: [mode.file] }))
  }
  // One build of the three: the declarations they share are read once.
  const { stdout } = await run(TSC, ['-b', ...MODES.map(mode => join(folder, mode.name))]).catch((error: { stdout: string }) => error)
  for (const mode of MODES) t.notMatch(stdout, `${mode.name}/`, `${mode.name}: no error`)
  t.equal(stdout, '', 'no error at all')
})
