import { randomBytes, randomUUID } from 'node:crypto'
import type { Test } from 'tap'
import { newJobId } from '../core/job-id.js'
import type { ResultBodies } from '../index.js'

/** A new `ResultBodies` for each check. */
export type MakeResults = () => Promise<ResultBodies>

type ResultsCheck = (t: Test, make: MakeResults) => Promise<void>

const CSV = { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': 'attachment; filename="report.csv"', 'x-not-travelling': '1' }

const byteForByte: ResultsCheck = async (t, make) => {
  const results = await make()
  for (const size of [0, 1000, 21 * 1024 * 1024 + 7]) {
    const body = randomBytes(size)
    const stored = await results.put(newJobId(), randomUUID(), body, CSV)
    t.equal(stored.bytes, size)
    const response = await fetch(await results.url(stored))
    t.equal(response.status, 200, `${size} bytes`)
    t.ok(Buffer.from(await response.arrayBuffer()).equals(body), `${size} bytes, byte for byte`)
    t.equal(response.headers.get('content-type'), CSV['content-type'])
    t.equal(response.headers.get('content-disposition'), CSV['content-disposition'])
    t.equal(response.headers.get('x-not-travelling'), null)
    const head = await fetch(await results.url(stored, 'HEAD'), { method: 'HEAD' })
    t.equal(head.status, 200, `${size} bytes: HEAD with a URL for HEAD`)
    t.equal(head.headers.get('content-length'), String(size))
  }
}

const chunksJoined: ResultsCheck = async (t, make) => {
  const results = await make()
  // Chunks of uneven sizes that straddle part boundaries, an empty one among them.
  const chunks = [randomBytes(3 * 1024 * 1024 + 1), Buffer.alloc(0), randomBytes(9 * 1024 * 1024), ...Array.from({ length: 40 }, () => randomBytes(100_003))]
  for (const body of [chunks, chunks.slice(3, 5)]) {
    const stored = await results.put(newJobId(), randomUUID(), body, {})
    const expected = Buffer.concat(body)
    t.equal(stored.bytes, expected.length)
    t.ok(Buffer.from(await (await fetch(await results.url(stored))).arrayBuffer()).equals(expected), `${body.length} chunks, byte for byte`)
  }
}

const staleNeverReplaces: ResultsCheck = async (t, make) => {
  const results = await make()
  const id = newJobId()
  const stale = await results.put(id, 'owner-1', Buffer.from('stale'), {})
  const fresh = await results.put(id, 'owner-2', Buffer.from('fresh'), {})
  t.not(stale.key, fresh.key)
  t.equal(await (await fetch(await results.url(fresh))).text(), 'fresh')
  t.equal(await (await fetch(await results.url(stale))).text(), 'stale')
  await results.delete(id)
  t.equal((await fetch(await results.url(fresh))).status, 404)
  t.equal((await fetch(await results.url(stale))).status, 404)
  await results.delete(newJobId())
}

// Request bodies (issue 29): optional, for implementations that take uploads.
async function upload (results: ResultBodies, chunks: Buffer[]): Promise<{ key: string, bytes: number }> {
  const writer = (results.upload as NonNullable<ResultBodies['upload']>)(newJobId())
  for (const chunk of chunks) await writer.write(chunk)
  return { key: writer.key, bytes: await writer.end() }
}

async function read (results: ResultBodies, body: { key: string, bytes: number }): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const chunk of await (results.open as NonNullable<ResultBodies['open']>)({ ...body, sha256: 'x'.repeat(43) })) parts.push(chunk as Buffer)
  return Buffer.concat(parts)
}

const uploadsStreamBack: ResultsCheck = async (t, make) => {
  const results = await make()
  if (results.upload === undefined) { t.pass('no uploads'); return }
  for (const chunks of [[], [randomBytes(1000)], [randomBytes(5 * 1024 * 1024)], [randomBytes(3 * 1024 * 1024 + 1), Buffer.alloc(0), ...Array.from({ length: 150 }, () => randomBytes(65_536 + 7))]]) {
    const whole = Buffer.concat(chunks)
    const body = await upload(results, chunks)
    t.equal(body.bytes, whole.length)
    t.ok((await read(results, body)).equals(whole), `${whole.length} bytes, byte for byte`)
    await results.discard?.(body)
    await t.rejects(read(results, body), `${whole.length} bytes: discarded`)
  }
}

const uploadsGivenUp: ResultsCheck = async (t, make) => {
  const results = await make()
  if (results.upload === undefined) { t.pass('no uploads'); return }
  const write = (results.upload as NonNullable<ResultBodies['upload']>).bind(results)
  const midway = write(newJobId())
  for (let i = 0; i < 3; i++) await midway.write(randomBytes(4 * 1024 * 1024))
  await midway.abort()
  await t.rejects(read(results, { key: midway.key, bytes: 12 * 1024 * 1024 }), 'given up midway: no object')
  await t.rejects(midway.write(Buffer.from('more')), 'and it takes nothing more')
  const ended = write(newJobId())
  await ended.write(randomBytes(7 * 1024 * 1024))
  await ended.end()
  await ended.abort()
  await t.rejects(read(results, { key: ended.key, bytes: 7 * 1024 * 1024 }), 'given up once made: removed')
}

const CHECKS: Record<string, ResultsCheck> = {
  'a body comes back byte for byte through its URL, with the headers that travel': byteForByte,
  'a body given as chunks (as a streaming route wrote them) comes back joined, byte for byte': chunksJoined,
  'a stale attempt\'s body never replaces the newer one\'s; delete removes both': staleNeverReplaces,
  'uploads: a request body written chunk by chunk, of any size and without a declared length, streams back byte for byte; discard removes it': uploadsStreamBack,
  'uploads: an upload given up, before or after its end, leaves no object': uploadsGivenUp
}

/**
 * The contract every `ResultBodies` passes (`s3Results` runs it on an S3 emulator): bodies of
 * any size, up to 21 MiB here, back byte for byte through their URL with the headers that travel
 * (a `HEAD` too, with a URL for `HEAD`); a stale attempt's body never replaces the one served;
 * `delete` removes every attempt's body (a URL of a deleted body answers 404); where it takes
 * uploads (the optional `upload`, `open`, `discard`), request bodies stream to it and back and
 * an upload given up leaves nothing. Each check is a
 * tap subtest of `t`; the URLs are fetched with the global `fetch`.
 *
 * @example
 * import t from 'tap'
 * import { resultsContract } from 'fastify-long-running/testing'
 *
 * t.test('my result bodies', async t => {
 *   resultsContract(t, async () => myResults({ bucket: 'test-results' }))
 * })
 */
export function resultsContract (t: Test, make: MakeResults): void {
  for (const [name, check] of Object.entries(CHECKS)) t.test(name, async t => { await check(t, make) })
}
