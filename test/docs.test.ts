import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'
import t from 'tap'

// The documentation's shape: a README for users of at most 300 lines, the rest in docs/ and
// CONTRIBUTING.md, and every relative link between them resolving, to a file and, for an
// `#anchor`, to a heading of that file.
const MAX_README_LINES = 300
const DOCS = ['README.md', 'CONTRIBUTING.md', ...readdirSync('docs').filter(name => name.endsWith('.md')).map(name => join('docs', name))]

/** Markdown without fenced code blocks and inline code, where `](` and `#` mean nothing. */
function prose (text: string): string {
  return text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '')
}

/** GitHub's anchor for a heading: lower case, punctuation but `-` and `_` dropped, spaces to `-`. */
function slug (heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-')
}

/** The anchors of a markdown file's headings; a repeated heading gets `-1`, `-2`, as on GitHub. */
function anchorsOf (text: string): Set<string> {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  const withoutFences = text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '')
  for (const [, heading] of withoutFences.matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const base = slug(heading as string)
    const count = seen.get(base) ?? 0
    seen.set(base, count + 1)
    anchors.add(count === 0 ? base : `${base}-${count}`)
  }
  return anchors
}

/** The relative link targets of a markdown text (`](path)`, `](path#anchor)`, `](#anchor)`). */
function linksOf (text: string): string[] {
  const targets = [...prose(text).matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map(([, target]) => target as string)
  return targets.filter(target => !/^[a-z][a-z0-9+.-]*:/i.test(target) && !target.startsWith('//'))
}

/** The links of `text`, read as the file `file`, that point to no file or to no heading. */
function brokenLinks (file: string, text: string): string[] {
  const broken: string[] = []
  for (const link of linksOf(text)) {
    const hash = link.indexOf('#')
    const path = decodeURIComponent(hash === -1 ? link : link.slice(0, hash))
    const anchor = hash === -1 ? undefined : decodeURIComponent(link.slice(hash + 1))
    const target = path === '' ? file : normalize(join(dirname(file), path))
    if (path !== '' && !existsSync(target)) {
      broken.push(`${file}: ${link} (no file ${target})`)
      continue
    }
    if (anchor === undefined) continue
    // Anchors are checked in markdown only: another file's fragments are not headings.
    const page = target === file ? text : target.endsWith('.md') && statSync(target).isFile() ? readFileSync(target, 'utf8') : undefined
    if (page !== undefined && !anchorsOf(page).has(anchor)) broken.push(`${file}: ${link} (no heading #${anchor} in ${target})`)
  }
  return broken
}

t.test(`the README has at most ${MAX_README_LINES} lines`, async t => {
  const text = readFileSync('README.md', 'utf8')
  const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0)
  t.ok(lines <= MAX_README_LINES, `${lines} lines`)
})

t.test('the README links to CONTRIBUTING.md and to every page in docs/', async t => {
  const links = new Set(linksOf(readFileSync('README.md', 'utf8')).map(link => link.split('#')[0]))
  for (const file of DOCS.filter(file => file !== 'README.md')) t.ok(links.has(file), file)
})

t.test('every relative link in the README, CONTRIBUTING.md and docs/ resolves, anchors included', async t => {
  t.ok(DOCS.length > 3, `read ${DOCS.join(', ')}`)
  t.same(DOCS.flatMap(file => brokenLinks(file, readFileSync(file, 'utf8'))), [])
})

t.test('the check itself sees a missing file, a missing heading and a missing in-page anchor', async t => {
  t.equal(slug('On AWS, quick start'), 'on-aws-quick-start')
  t.equal(slug('`sqsQueue` and `dynamoDbStore`'), 'sqsqueue-and-dynamodbstore')
  t.equal(slug('What runs again in a job, and how to skip it'), 'what-runs-again-in-a-job-and-how-to-skip-it')
  t.same([...anchorsOf('# A\n## Notes\n```sh\n# not a heading\n```\n## Notes\n')], ['a', 'notes', 'notes-1'])
  const text = [
    '# Here',
    '[fine](README.md) [fine](docs/http.md#openapi-and-cors) [fine](#here) [web](https://example.com/x.md)',
    '`[code](nowhere.md)`',
    '[a](docs/nope.md) [b](README.md#no-such-heading) [c](#nowhere)'
  ].join('\n')
  t.same(brokenLinks('page.md', text), [
    'page.md: docs/nope.md (no file docs/nope.md)',
    'page.md: README.md#no-such-heading (no heading #no-such-heading in README.md)',
    'page.md: #nowhere (no heading #nowhere in page.md)'
  ])
})
