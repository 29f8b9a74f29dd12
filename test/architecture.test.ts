import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import t from 'tap'

// The layers of src/, lowest first. A file may import from its own layer or a lower one,
// never from a higher one: each change then has one place to land, and no cycle can form.
const LAYERS: Array<[number, RegExp]> = [
  [0, /^(errors|validate|clock|retry)\.ts$/],
  // The ground every layer shares: wire types and codecs, job ids and states, size limits.
  [1, /^aws-client\.ts$|^core\//],
  [2, /^(queue|store|results)\//],
  [3, /^job\//],
  [4, /^(options|route-options)\.ts$/],
  [5, /^(http|lambda)\//],
  [6, /^plugin\.ts$/],
  [7, /^index\.ts$/],
  // The client stands apart (see its own test below): the number only keeps layerOf total.
  [8, /^client\//]
]
const SRC = 'src'

function layerOf (file: string): number {
  const layer = LAYERS.find(([, pattern]) => pattern.test(file))
  if (layer === undefined) throw new Error(`${file} is in no layer: add it to LAYERS`)
  return layer[0]
}

function sources (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [])
}

const files = sources(SRC).map(path => relative(SRC, path))

t.test('every import runs to the same layer or a lower one', async t => {
  const upward: string[] = []
  for (const file of files) {
    const text = readFileSync(join(SRC, file), 'utf8')
    for (const [, target] of text.matchAll(/from '(\.[^']+)'/g)) {
      const imported = normalize(join(dirname(file), (target as string).replace(/\.js$/, '.ts')))
      if (layerOf(imported) > layerOf(file)) upward.push(`${file} (layer ${layerOf(file)}) imports ${imported} (layer ${layerOf(imported)})`)
    }
  }
  t.same(upward, [], 'no upward import')
  t.ok(files.length > 20, `read ${files.length} files`)
})

t.test('the client and the plugin share no code: the client imports only its own files and no package', async t => {
  const crossings: string[] = []
  for (const file of files) {
    const text = readFileSync(join(SRC, file), 'utf8')
    for (const [, target] of text.matchAll(/(?:from|import) '([^']+)'/g)) {
      const relativeTarget = (target as string).startsWith('.')
      const imported = relativeTarget ? normalize(join(dirname(file), target as string)) : target as string
      const client = file.startsWith('client/')
      if (client && (!relativeTarget || !imported.startsWith('client/'))) crossings.push(`${file} imports ${imported}`)
      if (!client && relativeTarget && imported.startsWith('client/')) crossings.push(`${file} imports ${imported}`)
    }
  }
  t.same(crossings, [])
  t.ok(files.some(file => file.startsWith('client/')))
})

t.test('no source file over 300 lines', async t => {
  const long = files.filter(file => readFileSync(join(SRC, file), 'utf8').split('\n').length > 300)
  t.same(long, [])
})

// Every time the plugin keeps comes from its clock (src/clock.ts): a test's fake clock then
// reaches every timer and every `now`, DynamoDB's `:now` included, as pg-boss's clock reaches
// Postgres. The client is a separate browser bundle with no plugin clock.
const OWN_TIME = [/\bDate\.now\b/, /\bnew Date\(\s*\)/, /(?<![.\w#])(?:setTimeout|setInterval|clearTimeout|clearInterval)\s*\(/, /\bsystemClock\b/]
const OWN_TIME_ALLOWED = (file: string): boolean => file === 'clock.ts' || file.startsWith('client/')

/** The code of a line, without its comment: comments may name what the code must not call. */
function codeOf (line: string): string {
  const trimmed = line.trim()
  if (trimmed.startsWith('*') || trimmed.startsWith('/*') || trimmed.startsWith('//')) return ''
  return line.replace(/\s\/\/ .*$/, '')
}

function readsOwnTime (line: string): boolean {
  const code = codeOf(line)
  return OWN_TIME.some(pattern => pattern.test(code))
}

t.test('no source file reads the time but through the plugin\'s clock (src/clock.ts; the client apart)', async t => {
  const offending: string[] = []
  for (const file of files.filter(file => !OWN_TIME_ALLOWED(file))) {
    readFileSync(join(SRC, file), 'utf8').split('\n').forEach((line, index) => {
      if (readsOwnTime(line)) offending.push(`${file}:${index + 1}: ${line.trim()}`)
    })
  }
  t.same(offending, [])
})

t.test('the check itself sees time read outside the clock', async t => {
  for (const line of [
    'const deadline = Date.now() + remaining',
    '    ExpressionAttributeValues: { \':now\': numberValue(Date.now()) }',
    'const stamp = new Date()',
    'const timer = setTimeout(finish, ms)',
    '  clearTimeout(timer)',
    'setInterval(() => sweep(), 1000)',
    'withRetries(op, { clock: systemClock, ...retries.send })'
  ]) t.ok(readsOwnTime(line), line)
  for (const line of [
    'const timer = this.#clock.setTimeout(finish, ms)',
    'clock.clearTimeout(timer)',
    'const expiry = new Date(expiresAt)',
    ' * waits on `setTimeout` of its own',
    'const now = clock.now() // never Date.now()'
  ]) t.notOk(readsOwnTime(line), line)
  t.ok(OWN_TIME_ALLOWED('clock.ts') && OWN_TIME_ALLOWED('client/waiting.ts'))
  t.notOk(OWN_TIME_ALLOWED('store/dynamodb-store.ts'))
})

t.test('the check itself sees an upward import', async t => {
  t.ok(layerOf('options.ts') > layerOf('job/runner.ts'))
  t.ok(layerOf('http/location.ts') > layerOf('options.ts'), 'options.ts may not import from http/')
  t.throws(() => layerOf('stray.ts'))
})
