import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'
import t from 'tap'

// The package as its users get it: `npm pack`ed (from dist/, which `npm test` builds first),
// installed from the tarball into a folder of its own made with `npm init -y`, far from this
// project's node_modules. There the README's quick start runs as the README gives it, and a
// backend author's test runs the shipped contract suites against the memory adapters.
const run = promisify(execFile)
const ROOT = process.cwd()
// What npm needs to find its cache, its configuration and the registry; nothing of tap's
// loaders, and nothing of `npm test`'s own npm (its local prefix would be this project).
const NPM_ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) =>
  /^(PATH|HOME|NODE_EXTRA_CA_CERTS|https?_proxy|no_proxy|npm_config_(cache|registry|userconfig|globalconfig))$/i.test(name))) as Record<string, string>

const work = mkdtempSync(join(tmpdir(), 'flr-installed-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const app = join(work, 'app')
mkdirSync(app)

const packed = JSON.parse((await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT, env: NPM_ENV })).stdout) as Array<{ filename: string, files: Array<{ path: string }> }>
const tarball = join(work, packed[0]?.filename as string)
await run('npm', ['init', '-y'], { cwd: app, env: NPM_ENV })
const initialType = (JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { type?: string }).type
await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, 'fastify'], { cwd: app, env: NPM_ENV })
const installed = join(app, 'node_modules', 'fastify-long-running')

// The backend author's run starts now and goes on while the other checks run.
// tap comes from this project's node_modules, linked as npm links a package: installing its
// 260 packages from the cache would take half a minute of npm test's budget, and the suites
// only use the `t` the test hands them.
symlinkSync(join(ROOT, 'node_modules', 'tap'), join(app, 'node_modules', 'tap'), 'dir')
// Linked, tap shares this project's test class, built for its plugin list: without
// @tapjs/typescript (package.json, test/helpers/ts-loader.mjs). A JavaScript project has no use
// for it either; with tap's default list, tap would build that class again, under the running
// npm test.
writeFileSync(join(app, '.taprc'), "plugin: ['!@tapjs/typescript']\n")
writeFileSync(join(app, 'contract.test.mjs'), [
  "import t from 'tap'",
  "import { memoryQueue, memoryStore } from 'fastify-long-running'",
  "import { FakeClock, queueContract, storeContract } from 'fastify-long-running/testing'",
  '',
  'const stores = []',
  't.teardown(async () => { for (const store of stores) await store.close() })',
  "t.test('memory store', async t => {",
  '  storeContract(t, async clock => {',
  '    const store = memoryStore({ clock })',
  '    stores.push(store)',
  '    return store',
  '  })',
  '})',
  "t.test('memory queue', async t => {",
  '  queueContract(t, async () => memoryQueue({ maxMessageBytes: 64 * 1024, retryDelaySeconds: 0 }))',
  '})',
  "t.test('the fake clock moves a store\\'s time', async t => {",
  '  const clock = new FakeClock()',
  '  const store = memoryStore({ clock })',
  '  stores.push(store)',
  '  const id = crypto.randomUUID()',
  '  await store.create({ id, waitSeconds: 1, createdAt: clock.now(), expiresAt: clock.now() + 1000 })',
  "  t.equal((await store.get(id))?.status, 'pending')",
  '  await clock.advance(1000)',
  '  t.equal(await store.get(id), undefined)',
  '})',
  ''
].join('\n'))
const tap = join(app, 'node_modules', 'tap', 'dist', 'esm', 'run.mjs')
const backendAuthorsRun = run(process.execPath, [tap, '--disable-coverage', '--reporter=tap', 'contract.test.mjs'], { cwd: app, env: { PATH: process.env.PATH ?? '', HOME: work } })
// A failure is reported by its subtest, which awaits it; meanwhile the quick start runs.
backendAuthorsRun.catch(() => {})

t.test('the tarball: dist with its maps, the sources they point to, README and LICENSE; no tests', async t => {
  const files = packed[0]?.files.map(file => file.path) ?? []
  for (const file of ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/client/index.js', 'dist/testing/index.js', 'dist/testing/index.d.ts', 'src/index.ts']) {
    t.ok(files.includes(file), file)
  }
  t.same(files.filter(file => /^(test|example|bench|docs)\/|\.tsbuildinfo$/.test(file)), [], 'nothing of the repository but the package')
  const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as Record<string, Record<string, unknown>>
  t.match(manifest.peerDependencies, { fastify: '^5.0.0', tap: String })
  t.match(manifest.peerDependenciesMeta, { tap: { optional: true } })
  t.match(manifest, { repository: { url: /^git\+https:\/\/github\.com\// }, homepage: String, bugs: { url: String } })
})

t.test('every source map and declaration map points to files that are in the package', async t => {
  const maps = (readdirSync(join(installed, 'dist'), { recursive: true }) as string[]).filter(file => file.endsWith('.map'))
  t.ok(maps.length > 100, `${maps.length} maps`)
  const missing = maps.flatMap(map => {
    const { sources } = JSON.parse(readFileSync(join(installed, 'dist', map), 'utf8')) as { sources: string[] }
    return sources.map(source => resolve(dirname(join(installed, 'dist', map)), source)).filter(source => !existsSync(source))
  })
  t.same(missing, [])
})

t.test('the README\'s quick start, copied out of the README, runs in a folder made with npm init -y and answers curl -L', async t => {
  t.equal(initialType, 'commonjs', 'npm init -y makes a CommonJS package, as the README says')
  const readme = readFileSync(join(installed, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Quick start\n'), readme.indexOf('\n## ', readme.indexOf('## Quick start\n') + 1))
  const blocks = [...section.matchAll(/^```(\w+)\n([\s\S]*?)^```$/gm)].map(([, lang, code]) => ({ lang, code: code as string }))
  t.match(blocks[0], { lang: 'sh', code: 'npm i fastify-long-running fastify\n' }, 'the install command, as this test ran it')
  const server = blocks.find(block => block.code.startsWith('// server.mjs\n'))
  const commands = blocks.find(block => block.code.startsWith('node server.mjs\n'))?.code.split('\n') ?? []
  const curl = commands.find(line => line.startsWith('curl -L '))
  if (server === undefined || curl === undefined) throw new Error('no server.mjs block or curl line in the README\'s quick start')
  writeFileSync(join(app, 'server.mjs'), server.code)

  const child = spawn(process.execPath, ['server.mjs'], { cwd: app, env: { PATH: process.env.PATH ?? '', PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const port = await listeningPort(child.stdout)
  const command = `${curl.replace('localhost:3000', `localhost:${port}`)} -sS -w '\\n%{http_code} %{num_redirects}'`
  const { stdout } = await run('sh', ['-c', command], { env: { PATH: process.env.PATH ?? '' } })
  const [body = '', status] = stdout.split('\n')
  t.equal(status, '200 1', 'a 200 through one 303, as the README says')
  t.match(JSON.parse(body), { report: 'ready', seconds: 3, job: /^[0-9a-f-]{36}$/ })
  // The answer the README shows, its job id elided: `{"report":"ready","seconds":3,"job":"…"}`.
  const shown = JSON.parse(/^# .*(\{"report".*\})$/m.exec(commands.join('\n'))?.[1] ?? 'null') as Record<string, unknown>
  t.same({ ...JSON.parse(body), job: '…' }, shown, 'the answer the README shows')
  child.kill('SIGTERM')
  await once(child, 'exit')
})

t.test('a backend author\'s test outside the project runs the shipped contract suites against the memory adapters', async t => {
  const { stdout } = await backendAuthorsRun
  t.match(stdout, /^ok 1 - contract\.test\.mjs/m)
  const summary = /^# \{ total: (\d+), pass: (\d+) \}$/m.exec(stdout)
  t.ok(summary !== null && summary[1] === summary[2] && Number(summary[1]) > 100, `every assertion passed: ${summary?.[0] ?? stdout}`)
})

/** The port of the first "Server listening at" line of a Fastify app's JSON log; the log keeps flowing. */
async function listeningPort (stdout: NodeJS.ReadableStream): Promise<string> {
  const lines = createInterface({ input: stdout })
  return await new Promise((resolve, reject) => {
    lines.on('line', line => {
      const port = /"msg":"Server listening at http:\/\/[^"]*:(\d+)"/.exec(line)?.[1]
      if (port !== undefined) resolve(port)
    })
    lines.once('close', () => reject(new Error('the server exited before it listened')))
  })
}
