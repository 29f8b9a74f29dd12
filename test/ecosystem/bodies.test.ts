import { createHash, randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Transform } from 'node:stream'
import { gunzipSync, gzipSync } from 'node:zlib'
import compress from '@fastify/compress'
import multipart from '@fastify/multipart'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import t from 'tap'
import longRunning from '../../src/index.js'
import { curl, serve } from './serve.js'

const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

t.test('@fastify/multipart: a handler reading request.parts() gets the whole upload in the job', async t => {
  const { url } = await serve(t, async (app) => {
    await app.register(multipart, { limits: { fileSize: 16 * 1024 * 1024 } })
    await app.register(longRunning, { waitSeconds: 0 })
    app.post('/upload', { longRunning: true, bodyLimit: 16 * 1024 * 1024 }, async (request) => {
      const files: Array<{ field: string, bytes: number, sha: string }> = []
      for await (const part of request.parts()) {
        if (part.type === 'file') {
          const data = await part.toBuffer()
          files.push({ field: part.fieldname, bytes: data.length, sha: sha(data) })
        }
      }
      return { files }
    })
  })
  const file = randomBytes(5 * 1024 * 1024)
  const form = new FormData()
  form.append('note', 'hello')
  form.append('doc', new Blob([file]), 'doc.bin')
  const response = await fetch(`${url}/upload`, { method: 'POST', body: form })
  t.equal(response.status, 200)
  t.same(await response.json(), { files: [{ field: 'doc', bytes: file.length, sha: sha(file) }] })

  const path = join(tmpdir(), `upload-${process.pid}.bin`)
  await writeFile(path, file)
  const viaCurl = await curl(['-L', '-F', `doc=@${path}`, `${url}/upload`])
  t.equal(viaCurl.status, 200, 'curl -F -L')
  t.same(JSON.parse(viaCurl.body), { files: [{ field: 'doc', bytes: file.length, sha: sha(file) }] })
})

t.test('@fastify/multipart: an upload within multipart\'s limits but over the route\'s bodyLimit is a clear 413', async t => {
  const { url } = await serve(t, async (app) => {
    await app.register(multipart, { limits: { fileSize: 16 * 1024 * 1024 } })
    await app.register(longRunning, { waitSeconds: 5 })
    const handler = async (request: FastifyRequest): Promise<unknown> => {
      let bytes = 0
      for await (const part of request.parts()) if (part.type === 'file') bytes += (await part.toBuffer()).length
      return { bytes }
    }
    // Fastify's default bodyLimit (1 MiB): the synchronous route streams the file to its handler.
    app.post('/sync', handler)
    app.post('/job', { longRunning: true }, handler)
  })
  const form = (): FormData => {
    const data = new FormData()
    data.append('doc', new Blob([randomBytes(3 * 1024 * 1024)]), 'doc.bin')
    return data
  }
  t.same(await (await fetch(`${url}/sync`, { method: 'POST', body: form() })).json(), { bytes: 3 * 1024 * 1024 })
  const job = await fetch(`${url}/job`, { method: 'POST', body: form() })
  t.equal(job.status, 413)
  t.match(await job.json(), { code: 'FST_LONG_RUNNING_BODY_TOO_LARGE', message: /bodyLimit of 1048576 bytes.*uploads included; raise the route's bodyLimit/ })
})

t.test('@fastify/multipart with attachFieldsToBody: the job sees the fields', async t => {
  const { url } = await serve(t, async (app) => {
    await app.register(multipart, { attachFieldsToBody: 'keyValues' })
    await app.register(longRunning, { waitSeconds: 0 })
    app.post('/fields', { longRunning: true }, async (request) => {
      const body = request.body as { doc: Buffer, note: string }
      return { note: body.note, bytes: body.doc.length }
    })
  })
  const form = new FormData()
  form.append('note', 'hi')
  form.append('doc', new Blob([randomBytes(60 * 1024)]), 'doc.bin')
  const response = await fetch(`${url}/fields`, { method: 'POST', body: form })
  t.equal(response.status, 200)
  t.same(await response.json(), { note: 'hi', bytes: 60 * 1024 })
})

/** POST /sum: a long-running route that decodes a gzip JSON body itself, by its header (so the replay must keep the header with the bytes). */
function sumRoute (app: FastifyInstance): void {
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const json = request.headers['content-encoding'] === 'gzip' ? gunzipSync(body as Buffer) : body as Buffer
    done(null, JSON.parse(json.toString()))
  })
  app.post('/sum', { longRunning: true }, async (request) => {
    const { values } = request.body as { values: number[] }
    return { sum: values.reduce((a, b) => a + b, 0), encoding: request.headers['content-encoding'] ?? null }
  })
}

t.test('without a decoding hook, an encoded body and its Content-Encoding reach the job as the client sent them', async t => {
  const { url } = await serve(t, async (app) => {
    await app.register(longRunning, { waitSeconds: 10 })
    sumRoute(app)
  })
  const response = await fetch(`${url}/sum`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync(JSON.stringify({ values: [1, 2, 3] })) })
  t.same(await response.json(), { sum: 6, encoding: 'gzip' })
})

// A preParsing hook that only watches the bytes (a counter, a checksum) hands on a stream of its
// own: the body is still as the client encoded it, so its Content-Encoding stays with it. Only a
// stream that says how many encoded bytes it read (`receivedEncodedLength`, as Fastify asks of
// decoding hooks and @fastify/compress does) makes the replay a decoded body.
t.test('an app hook that only counts the bytes: the encoded body keeps its Content-Encoding in the job', async t => {
  let counted = 0
  const { url } = await serve(t, async (app) => {
    await app.register(longRunning, { waitSeconds: 10 })
    app.addHook('preParsing', async (_request, _reply, payload) => payload.pipe(new Transform({
      transform (chunk: Buffer, _encoding, callback) { counted += chunk.length; callback(null, chunk) }
    })))
    sumRoute(app)
  })
  const body = gzipSync(JSON.stringify({ values: [4, 5, 6] }))
  const response = await fetch(`${url}/sum`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body })
  t.same(await response.json(), { sum: 15, encoding: 'gzip' })
  t.ok(counted >= body.length, 'the hook saw the encoded bytes')
})

t.test('@fastify/compress: a gzip request body is replayed decoded; each fetch of the result gets its own encoding', async t => {
  const { url } = await serve(t, async (app) => {
    await app.register(compress, { threshold: 0 })
    await app.register(longRunning, { waitSeconds: 0 })
    app.post('/sum', { longRunning: true }, async (request) => {
      const { values } = request.body as { values: number[] }
      return { sum: values.reduce((a, b) => a + b, 0), padding: 'x'.repeat(2000) }
    })
  })
  const body = gzipSync(JSON.stringify({ values: [1, 2, 3] }))
  const accepted = await fetch(`${url}/sum`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'accept-encoding': 'gzip', prefer: 'respond-async' },
    body
  })
  t.equal(accepted.status, 202)
  const location = url + (accepted.headers.get('location') ?? '')
  const identity = await curl(['-H', 'accept-encoding: identity', '-H', 'prefer: wait=10', location])
  t.equal(identity.status, 200)
  t.notMatch(identity.headers, /content-encoding/i, 'asked for identity: none applied')
  t.match(JSON.parse(identity.body), { sum: 6 })
  const gzipped = await curl(['-H', 'accept-encoding: gzip', location])
  t.match(gzipped.headers, /content-encoding: gzip/i, 'asked for gzip: gzip')
  t.match(JSON.parse(gunzipSync(gzipped.bytes).toString()), { sum: 6 })
})
