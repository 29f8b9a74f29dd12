import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import t from 'tap'
import ts from 'typescript'

// The layers of src/, lowest first. A file may import from its own layer or a lower one,
// never from a higher one: each change then has one place to land, and no cycle can form.
const LAYERS: Array<[number, RegExp]> = [
  [0, /^(errors|validate|clock|retry)\.ts$/],
  // The ground every layer shares: wire types and codecs, job ids and states, size limits.
  [1, /^(aws|redis)-client\.ts$|^core\//],
  [2, /^(queue|store|results)\//],
  [3, /^job\//],
  [4, /^(options|route-options)\.ts$/],
  [5, /^(http|lambda)\//],
  [6, /^(plugin|warnings)\.ts$/],
  [7, /^index\.ts$/],
  // fastify-long-running/testing: the contract suites, written against the public types.
  [8, /^testing\//],
  // The client stands apart (see its own test below): the number only keeps layerOf total.
  [9, /^client\//]
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

// One concept a file, one step a function: past these a file or a function is doing two things.
const MAX_FILE_LINES = 250
const MAX_FUNCTION_LINES = 60

t.test(`no source file over ${MAX_FILE_LINES} lines, no function over ${MAX_FUNCTION_LINES}`, async t => {
  const long = files.filter(file => readFileSync(join(SRC, file), 'utf8').split('\n').length > MAX_FILE_LINES)
  t.same(long, [])
  t.same(files.flatMap(file => longFunctions(file, readFileSync(join(SRC, file), 'utf8'))), [])
})

/** Functions (methods, arrows, accessors) of `text` longer than {@link MAX_FUNCTION_LINES}. */
function longFunctions (file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const found: string[] = []
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
      const line = (position: number): number => source.getLineAndCharacterOfPosition(position).line
      const lines = line(node.getEnd()) - line(node.getStart()) + 1
      if (lines > MAX_FUNCTION_LINES) found.push(`${file}:${line(node.getStart()) + 1} ${lines} lines`)
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

t.test('no import cycle between source files', async t => {
  const imports = new Map(files.map(file => [file, [...readFileSync(join(SRC, file), 'utf8').matchAll(/from '(\.[^']+)'/g)]
    .map(([, target]) => normalize(join(dirname(file), (target as string).replace(/\.js$/, '.ts'))))]))
  t.same(cyclesOf(imports), [])
  t.same(cyclesOf(new Map([['a.ts', ['b.ts']], ['b.ts', ['c.ts']], ['c.ts', ['a.ts']]])), ['a.ts → b.ts → c.ts → a.ts'], 'the check sees a cycle')
})

/** Every import cycle of `imports` (file → files it imports), as `a → b → a`. */
function cyclesOf (imports: Map<string, string[]>): string[] {
  const state = new Map<string, 'open' | 'done'>()
  const cycles: string[] = []
  const visit = (file: string, path: string[]): void => {
    if (state.get(file) === 'done') return
    if (state.get(file) === 'open') {
      cycles.push([...path.slice(path.indexOf(file)), file].join(' → '))
      return
    }
    state.set(file, 'open')
    for (const next of imports.get(file) ?? []) visit(next, [...path, file])
    state.set(file, 'done')
  }
  for (const file of imports.keys()) visit(file, [])
  return cycles
}

t.test('the size check sees a long function', async t => {
  const body = Array.from({ length: MAX_FUNCTION_LINES }, (_, i) => `  const v${i} = ${i}`).join('\n')
  t.same(longFunctions('x.ts', `function long () {\n${body}\n}\nconst short = () => 1\n`), [`x.ts:1 ${MAX_FUNCTION_LINES + 2} lines`])
})

// Every time the plugin keeps comes from its clock (src/clock.ts): a test's fake clock then
// reaches every timer and every `now`, DynamoDB's `:now` included, as pg-boss's clock reaches
// Postgres. The client is a separate browser bundle with no plugin clock; the contract suites
// (testing/) are tests, which hold a store to real time as well as to the fake clock they ship.
const OWN_TIME = [/\bDate\.now\b/, /\bnew Date\(\s*\)/, /(?<![.\w#])(?:setTimeout|setInterval|clearTimeout|clearInterval)\s*\(/, /\bsystemClock\b/]
const OWN_TIME_ALLOWED = (file: string): boolean => file === 'clock.ts' || file.startsWith('client/') || file.startsWith('testing/')

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
  t.ok(OWN_TIME_ALLOWED('clock.ts') && OWN_TIME_ALLOWED('client/waiting.ts') && OWN_TIME_ALLOWED('testing/fake-clock.ts'))
  t.notOk(OWN_TIME_ALLOWED('store/dynamodb-store.ts'))
})

t.test('the check itself sees an upward import', async t => {
  t.ok(layerOf('options.ts') > layerOf('job/runner.ts'))
  t.ok(layerOf('http/location.ts') > layerOf('options.ts'), 'options.ts may not import from http/')
  t.throws(() => layerOf('stray.ts'))
})
