import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { exportLines } from '../../example/shell.js'
import { childProcesses, follow, listeningUrl, startCommand, stopChild, type Child } from '../helpers/child.js'

// `npm run dev:aws` prints the emulators' variables as lines to paste into another terminal:
// pasted into a shell, they start `npm run worker` and `npm start` on the same emulators.
const run = promisify(execFile)

t.test('export lines survive any value through a POSIX shell', async t => {
  const env = { PLAIN: 'http://127.0.0.1:4566/000000000000/jobs', QUOTES: 'it\'s "quoted"', SHELLISH: '$HOME `id` $(id) \\ ; & | * ~ !', LINES: 'one\ntwo\n', EMPTY: '' }
  const script = `${exportLines(env)}exec "${process.execPath}" -e 'process.stdout.write(JSON.stringify(process.env))'`
  const { stdout } = await run('sh', ['-c', script], { env: { PATH: process.env.PATH ?? '' } })
  t.match(JSON.parse(stdout), env)
  t.throws(() => exportLines({ 'NOT A NAME': 'x' }), { message: 'Expected an environment variable name, got "NOT A NAME"' })
})

t.test('npm run dev:aws: its export lines, pasted into a shell, point npm run worker and npm start at its emulators', async t => {
  const start = childProcesses(t)
  const devAws = start('example/dev-aws.ts', { PORT: '0', HOST: '127.0.0.1' })
  await devAws.waitFor(line => typeof line.msg === 'string' && line.msg.startsWith('emulators ready'))
  const pasted = devAws.text.filter(line => line.startsWith('export ')).join('\n')
  t.match(pasted, /^export JOBS_QUEUE_URL='http:\/\/127\.0\.0\.1:\d+\/\d+\/jobs'$/m)
  t.match(pasted, /^export AWS_REGION='us-east-1'$/m)

  // Another terminal: nothing but the pasted lines, and no AWS config file to fall back on.
  const children: Child[] = []
  t.teardown(() => { for (const child of children) child.process.kill('SIGKILL') })
  const terminal = (script: string, env: Record<string, string> = {}): Child => {
    const child = startCommand('sh', ['-c', `${pasted}\nexec "${process.execPath}" --import tsx ${script}`], { AWS_CONFIG_FILE: '/nonexistent', ...env })
    children.push(child)
    return child
  }
  const worker = terminal('example/worker.ts')
  const server = terminal('example/server.ts', { PORT: '0', HOST: '127.0.0.1', WAIT_SECONDS: '1' })
  await worker.waitFor(line => line.msg === 'worker started')
  const response = await follow(`${await listeningUrl(server)}/payload?delay=1.5`)
  t.equal(response.status, 200, 'a job accepted by npm start, run on the emulators\' queue and table')
  t.equal(await response.text(), '{"MESSAGE":"It took 1.5 seconds to generate this."}')
  t.equal(await stopChild(worker), 0)
  t.equal(await stopChild(server), 0)
  t.equal(await stopChild(devAws), 0)
})
