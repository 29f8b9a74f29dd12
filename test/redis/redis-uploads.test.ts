import { createHash, randomBytes } from 'node:crypto'
import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import multipart from '@fastify/multipart'
import t from 'tap'
import { startRedisServer } from '../../example/redis-server.js'
import longRunning, { redisQueue, redisStore, s3Results } from '../../src/index.js'
import { serve } from '../ecosystem/serve.js'
import { startS3 } from '../helpers/s3.js'
import { strictS3 } from '../helpers/strict-aws.js'

// Issue 29 on Redis: the bucket that takes large results takes uploads too, whatever the
// backend; the job's record names the object, the worker streams it back and removes it.
const MiB = 1024 * 1024
const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

t.test('a multipart upload through the bucket on the Redis queue and store', async t => {
  const redis = await startRedisServer()
  t.teardown(() => redis.close())
  const s3 = await startS3('redis-uploads')
  t.teardown(() => s3.close())
  strictS3(s3.client)
  let ended = 0
  let onBoth: () => void = () => {}
  const both = new Promise<void>(resolve => { onBoth = resolve })
  // A job's upload is removed before onJobEnd hears of its end (its client may have the answer sooner).
  const onJobEnd = (): void => { if (++ended === 2) onBoth() }
  const { url } = await serve(t, async (app) => {
    await app.register(multipart, { limits: { fileSize: 64 * MiB } })
    await app.register(longRunning, {
      queue: redisQueue({ url: redis.url }),
      store: redisStore({ url: redis.url }),
      consume: true,
      onJobEnd,
      waitSeconds: 20,
      results: s3Results({ bucket: s3.bucket, client: s3.client })
    })
    app.post('/upload', { longRunning: true }, async (request) => {
      const files: Array<{ bytes: number, sha: string }> = []
      for await (const part of request.parts()) {
        if (part.type === 'file') {
          const data = await part.toBuffer()
          files.push({ bytes: data.length, sha: sha(data) })
        }
      }
      return { files }
    })
  })
  const file = randomBytes(11 * MiB)
  for (const key of [undefined, 'key-redis']) {
    const form = new FormData()
    form.append('doc', new Blob([file]), 'doc.bin')
    const response = await fetch(`${url}/upload`, { method: 'POST', body: form, headers: key === undefined ? {} : { 'idempotency-key': key } })
    t.same(await response.json(), { files: [{ bytes: file.length, sha: sha(file) }] }, key ?? 'unkeyed')
  }
  await both
  const { Contents = [] } = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket }))
  t.same(Contents, [], 'both jobs ended: their uploads are gone')
})
