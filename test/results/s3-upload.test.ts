import { runInNewContext } from 'node:vm'
import { setFlagsFromString } from 'node:v8'
import t from 'tap'
import { S3BodyWriter, type UploadCommand } from '../../src/results/s3-upload.js'

// The upload writer against a bucket whose answers the test releases one by one: what S3 is
// asked, in which order, when an upload is aborted while a part is in flight.
const MiB = 1024 * 1024

function bucket (): { calls: string[], answer: (kind: UploadCommand) => void, writer: S3BodyWriter } {
  const calls: string[] = []
  const waiting: Array<{ kind: UploadCommand, resolve: () => void }> = []
  const send = async (kind: UploadCommand, input: Record<string, unknown>): Promise<unknown> => {
    calls.push(kind === 'UploadPart' ? `UploadPart ${String(input.PartNumber)} ${(input.Body as Buffer).length}` : kind)
    if (kind === 'CreateMultipartUpload') return { UploadId: 'u' }
    if (kind !== 'UploadPart') return {}
    await new Promise<void>(resolve => waiting.push({ kind, resolve }))
    return { ETag: `"${calls.length}"` }
  }
  const answer = (kind: UploadCommand): void => {
    const index = waiting.findIndex(entry => entry.kind === kind)
    waiting.splice(index, 1)[0]?.resolve()
  }
  return { calls, answer, writer: new S3BodyWriter({ bucket: 'b', key: 'results/x/request', partBytes: 5 * MiB, send }) }
}

const settle = async (): Promise<void> => await new Promise(resolve => setImmediate(resolve))

t.test('aborted while a part is in flight and the next one waits for it: the next one never starts, the abort follows the last part', async t => {
  const { calls, answer, writer } = bucket()
  await writer.write(Buffer.alloc(5 * MiB))
  const second = writer.write(Buffer.alloc(5 * MiB)).catch((error: Error) => error.message)
  await settle()
  const aborted = writer.abort()
  answer('UploadPart')
  t.equal(await second, 'upload aborted', 'the waiting part gave up')
  await aborted
  t.same(calls, ['CreateMultipartUpload', `UploadPart 1 ${5 * MiB}`, 'AbortMultipartUpload'])
})

t.test('11 MiB in one write: two parts of S3\'s smallest size, one in flight at a time, and the rest at the end', async t => {
  const { calls, answer, writer } = bucket()
  const written = writer.write(Buffer.alloc(11 * MiB))
  await settle()
  answer('UploadPart')
  await settle()
  answer('UploadPart')
  await written
  const ending = writer.end()
  await settle()
  answer('UploadPart')
  t.equal(await ending, 11 * MiB)
  t.same(calls.filter(call => call.startsWith('UploadPart')), [`UploadPart 1 ${5 * MiB}`, `UploadPart 2 ${5 * MiB}`, `UploadPart 3 ${MiB}`], 'S3\'s smallest parts')
})

// A finished upload's request may wait minutes for its job: the writer it keeps must not keep
// its two 5 MiB part buffers too. Seen through the collector: once end() settles, nothing but
// the writer could hold them, and a full collection takes them.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

t.test('once end() settles, the writer holds no part buffer: the collector takes them while the writer lives on', async t => {
  const parts: Array<WeakRef<ArrayBufferLike>> = []
  const send = async (kind: UploadCommand, input: Record<string, unknown>): Promise<unknown> => {
    if (kind === 'UploadPart') parts.push(new WeakRef((input.Body as Buffer).buffer))
    return kind === 'CreateMultipartUpload' ? { UploadId: 'u' } : { ETag: '"e"' }
  }
  const writer = new S3BodyWriter({ bucket: 'b', key: 'results/x/request', partBytes: 5 * MiB, send })
  await writer.write(Buffer.alloc(11 * MiB))
  t.equal(await writer.end(), 11 * MiB)
  t.equal(parts.length, 3)
  // A WeakRef's target stays until the turn that made or read it is over.
  await settle()
  gc()
  t.same(parts.map(part => part.deref() === undefined), [true, true, true], 'every part buffer collected')
  t.ok(writer, 'the writer is still referenced')
})
