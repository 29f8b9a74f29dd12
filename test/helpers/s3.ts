import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3'
import S3rver from 's3rver'
import { strictS3Urls } from './strict-aws.js'

/**
 * An S3 emulator (s3rver) on a free port of this machine, with one bucket, behind the strict
 * layer's check of presigned URLs (`strictS3Urls`); `close` removes its files.
 */
export async function startS3 (bucket = 'results'): Promise<{ client: S3Client, endpoint: string, bucket: string, close: () => Promise<void> }> {
  const directory = mkdtempSync(join(tmpdir(), 's3-'))
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory })
  const { port } = await server.run()
  const strict = await strictS3Urls(`http://127.0.0.1:${port}`, 'S3RVER')
  const { endpoint } = strict
  const client = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } })
  await client.send(new CreateBucketCommand({ Bucket: bucket }))
  return {
    client,
    endpoint,
    bucket,
    async close () {
      client.destroy()
      await strict.close()
      await server.close()
      rmSync(directory, { recursive: true, force: true })
    }
  }
}
