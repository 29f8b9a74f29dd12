import t from 'tap'
import { fetchLongRunning } from '../../src/client/index.js'
import { childProcesses, listeningUrl, stopChild } from '../helpers/child.js'
import { clientScenario } from '../helpers/client-scenario.js'

// `fetchLongRunning` against the example as `npm start` and `npm run dev:aws` serve it, each in
// a child process: the embedded default, and SQS, DynamoDB, S3 and the worker Lambda export on
// the emulators. (The same scenario runs in process in client.test.ts, which measures coverage.)
t.test('npm start: the embedded default', async t => {
  const start = childProcesses(t)
  const server = start('example/server.ts', { PORT: '0', HOST: '127.0.0.1' })
  await clientScenario(t, await listeningUrl(server))
  t.equal(await stopChild(server), 0)
})

t.test('npm run dev:aws: SQS, DynamoDB, S3 and the worker Lambda on the emulators', async t => {
  const start = childProcesses(t)
  const server = start('example/dev-aws.ts', { PORT: '0', HOST: '127.0.0.1' })
  const url = await listeningUrl(server)
  await clientScenario(t, url, { handlerStops: false })
  await t.test('a result kept in S3 (5 MiB): described by the plugin, downloaded from its presigned URL', async t => {
    const downloads: string[] = []
    const recording = async (request: Request): Promise<Response> => {
      if (!request.url.startsWith(url)) downloads.push(request.url)
      return await fetch(request)
    }
    const response = await fetchLongRunning(`${url}/bytes?size=5242880&delay=1`, {}, { fetch: recording })
    t.equal(response.status, 200)
    t.equal(response.headers.get('content-type'), 'application/octet-stream')
    t.equal(downloads.length, 1, 'downloaded from the S3 emulator')
    const bytes = new Uint8Array(await response.arrayBuffer())
    t.equal(bytes.length, 5242880)
    t.ok(bytes.every((byte, i) => byte === i % 251), 'byte i = i % 251')
  })
  t.equal(await stopChild(server), 0)
})
