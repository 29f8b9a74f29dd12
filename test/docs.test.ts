import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'
import t from 'tap'

// The documentation's shape: a README for users of at most 300 lines, the rest in docs/ and
// CONTRIBUTING.md, and every link between them resolving, to a file and, for an `#anchor`, to a
// heading of that file. The README is also the package's page on npm, where a relative link
// leads nowhere: it links to the repository's files by their URL on GitHub (the `repository` of
// package.json, branch main), and those links are checked against this work tree.
const MAX_README_LINES = 300
const DOCS = ['README.md', 'CONTRIBUTING.md', ...readdirSync('docs').filter(name => name.endsWith('.md')).map(name => join('docs', name))]
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { repository: { url: string }, homepage: string, bugs: { url: string } }
const REPOSITORY = pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '')
const IN_REPOSITORY = new RegExp(`^${REPOSITORY.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}/(?:blob|tree)/main/`)

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

/** Every link target of a markdown text (`](target)`), outside code. */
function targetsOf (text: string): string[] {
  return [...prose(text).matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map(([, target]) => target as string)
}

/** The relative link targets of a markdown text (`](path)`, `](path#anchor)`, `](#anchor)`). */
function linksOf (text: string): string[] {
  return targetsOf(text).filter(target => !/^[a-z][a-z0-9+.-]*:/i.test(target) && !target.startsWith('//'))
}

/** The links of a markdown text to a file of the repository by its GitHub URL, as paths from the repository's root. */
function repositoryLinksOf (text: string): string[] {
  return targetsOf(text).filter(target => IN_REPOSITORY.test(target)).map(target => `/${target.replace(IN_REPOSITORY, '')}`)
}

/**
 * The links of `text`, read as the file `file`, that point to no file or to no heading: its
 * relative links, and its links to the repository's files on GitHub (`/path` from the root).
 */
function brokenLinks (file: string, text: string): string[] {
  const broken: string[] = []
  for (const link of [...linksOf(text), ...repositoryLinksOf(text)]) {
    const hash = link.indexOf('#')
    const path = decodeURIComponent(hash === -1 ? link : link.slice(0, hash))
    const anchor = hash === -1 ? undefined : decodeURIComponent(link.slice(hash + 1))
    const target = path === '' ? file : path.startsWith('/') ? normalize(path.slice(1)) : normalize(join(dirname(file), path))
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

t.test('the README links to CONTRIBUTING.md and to every page in docs/, by their URL in the repository', async t => {
  const links = new Set(repositoryLinksOf(readFileSync('README.md', 'utf8')).map(link => link.split('#')[0]))
  for (const file of DOCS.filter(file => file !== 'README.md')) t.ok(links.has(`/${file}`), file)
})

t.test('the README, the package\'s page on npm, has no relative link but to its own headings', async t => {
  t.same(linksOf(readFileSync('README.md', 'utf8')).filter(link => !link.startsWith('#')), [])
})

t.test('package.json names the repository the README links to, its homepage and its issues', async t => {
  t.match(REPOSITORY, /^https:\/\/github\.com\/[\w.-]+\/[\w.-]+$/)
  t.equal(pkg.homepage, `${REPOSITORY}#readme`)
  t.equal(pkg.bugs.url, `${REPOSITORY}/issues`)
  t.ok(repositoryLinksOf(readFileSync('README.md', 'utf8')).length > 10, 'the README uses it')
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
  // Links by URL resolve from the repository's root, wherever the page is.
  const byUrl = [
    `[fine](${REPOSITORY}/blob/main/docs/http.md#openapi-and-cors) [fine](${REPOSITORY}/tree/main/test) [fine](${REPOSITORY})`,
    `[d](${REPOSITORY}/blob/main/nope.md) [e](${REPOSITORY}/blob/main/README.md#nowhere) [f](${REPOSITORY}/blob/main/http.md)`
  ].join('\n')
  t.same(brokenLinks('docs/page.md', byUrl), [
    'docs/page.md: /nope.md (no file nope.md)',
    'docs/page.md: /README.md#nowhere (no heading #nowhere in README.md)',
    'docs/page.md: /http.md (no file http.md)'
  ])
})
