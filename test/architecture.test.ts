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

t.test('the check itself sees an upward import', async t => {
  t.ok(layerOf('options.ts') > layerOf('job/runner.ts'))
  t.ok(layerOf('http/location.ts') > layerOf('options.ts'), 'options.ts may not import from http/')
  t.throws(() => layerOf('stray.ts'))
})
