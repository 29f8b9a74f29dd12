import t from 'tap'
import { newJobId } from '../../src/core/job-id.js'
import { decodeMessage, encodeMessage, messageDigest, messageJson, type JobMessage } from '../../src/job/message.js'

// Issue 29: a job whose body was uploaded names its object in the request; the message digest
// (the job's accepted message, checked at every claim) covers it, so a forged message cannot
// point a job at another object, or at the same key with another length or digest.
const upload = { key: 'results/job/request', bytes: 12_345_678, sha256: 'x'.repeat(43), etag: '"9b2cf535f27731c974343645a3985328-3"' }
const message = (request: JobMessage['request']): JobMessage => ({ id: newJobId(), timeoutSeconds: 60, maxAttempts: 3, resultTtlSeconds: 3600, request })

t.test('the message digest covers the uploaded body\'s key, length, digest and ETag', async t => {
  const accepted = message({ method: 'POST', url: '/upload', headers: { 'content-type': 'multipart/form-data; boundary=x' }, upload })
  const digest = messageDigest(messageJson(accepted))
  for (const forged of [{ key: 'results/other/request' }, { bytes: 1 }, { sha256: 'y'.repeat(43) }, { etag: '"other"' }]) {
    const request = { ...accepted.request, upload: { ...upload, ...forged } } as JobMessage['request']
    t.not(messageDigest(messageJson({ ...accepted, request })), digest, JSON.stringify(forged))
  }
  const decoded = decodeMessage(encodeMessage(accepted))
  t.same(decoded.request?.upload, upload, 'travels through the queue as it was')
  t.equal(messageDigest(messageJson(decoded)), digest, 'and digests the same there')
  // A message of an earlier version names no ETag: still a valid upload.
  const { etag: _etag, ...older } = upload
  t.same(decodeMessage(encodeMessage(message({ method: 'POST', url: '/upload', headers: {}, upload: older }))).request?.upload, older)
})

t.test('a message with a malformed upload, or a body both inline and uploaded, could never run: refused', async t => {
  const bad: unknown[] = [{ ...upload, key: '' }, { ...upload, bytes: -1 }, { ...upload, bytes: 1.5 }, { ...upload, sha256: 'short' }, { ...upload, etag: '' }, { ...upload, etag: 'with space' }, { ...upload, etag: 7 }, 'key']
  for (const value of bad) {
    const json = messageJson(message({ method: 'POST', url: '/upload', headers: {} }))
    ;(json.request as Record<string, unknown>).upload = value
    t.throws(() => decodeMessage(JSON.stringify(json)), { code: 'FST_LONG_RUNNING_INVALID_MESSAGE' }, JSON.stringify(value))
  }
  const both = messageJson(message({ method: 'POST', url: '/upload', headers: {}, body: Buffer.from('x') }))
  ;(both.request as Record<string, unknown>).upload = upload
  t.throws(() => decodeMessage(JSON.stringify(both)), { code: 'FST_LONG_RUNNING_INVALID_MESSAGE', message: /inline and uploaded/ })
})
