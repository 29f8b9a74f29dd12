import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { emulatorClients, type Emulators } from '../example/emulators.js'

/**
 * The emulators in a process of their own (as AWS is not inside the app's process): the bench
 * then measures the plugin, not the emulators' share of one event loop.
 */
export async function startEmulatorsProcess (): Promise<Emulators> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
    import { startEmulators } from './example/emulators.ts'
    const emulators = await startEmulators({ visibilityTimeout: 60 })
    console.log(JSON.stringify({ env: emulators.env, queueUrl: emulators.queueUrl, dlqUrl: emulators.dlqUrl, tableName: emulators.tableName }))
    process.stdin.on('end', () => { void emulators.close().then(() => process.exit(0)) })
    process.stdin.resume()
  `], { stdio: ['pipe', 'pipe', 'inherit'] })
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve)
    child.once('exit', code => reject(new Error(`emulators exited (${code})`)))
  })
  const started = JSON.parse(line) as Pick<Emulators, 'env' | 'queueUrl' | 'dlqUrl' | 'tableName'>
  const { sqs, dynamodb } = emulatorClients(started.env)
  return {
    ...started,
    sqs,
    dynamodb,
    async close () {
      sqs.destroy()
      dynamodb.destroy()
      child.stdin?.end()
      await new Promise(resolve => child.once('exit', resolve))
    }
  }
}
