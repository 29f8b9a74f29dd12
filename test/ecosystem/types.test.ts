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

// Two projects: nodenext compiles consumer.mts as ESM and consumer.cts as CommonJS (require() of
// the ESM package, as Node >= 20.19 and TypeScript's nodenext allow it) in one program, so the
// declarations are checked once for both (about 4 s of CPU less than a project each).
const PROJECTS = [
  { name: 'bundler', module: 'esnext', moduleResolution: 'bundler', files: { 'consumer.ts': CONSUMER } },
  { name: 'nodenext', module: 'nodenext', moduleResolution: 'nodenext', files: { 'consumer.mts': CONSUMER, 'consumer.cts': CJS_CONSUMER } }
]

t.test('strict consumers compile with skipLibCheck off: moduleResolution bundler, nodenext (ESM) and CommonJS', async t => {
  const folder = await consumerFolder(t)
  for (const project of PROJECTS) {
    await mkdir(join(folder, project.name))
    for (const [file, text] of Object.entries(project.files)) await writeFile(join(folder, project.name, file), text)
    const compilerOptions = { strict: true, noEmit: true, skipLibCheck: false, module: project.module, moduleResolution: project.moduleResolution, target: 'es2022', types: [] }
    await writeFile(join(folder, project.name, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: Object.keys(project.files) }))
  }
  // One build of the two: the declarations they share are read once.
  const { stdout } = await run(TSC, ['-b', ...PROJECTS.map(project => join(folder, project.name))]).catch((error: { stdout: string }) => error)
  for (const project of PROJECTS) {
    for (const file of Object.keys(project.files)) t.notMatch(stdout, `${project.name}/${file}`, `${project.name}/${file}: no error`)
  }
  t.equal(stdout, '', 'no error at all')
})
