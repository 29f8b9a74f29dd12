import { Redis } from 'ioredis'
import { benchApp, timedFetch } from './lib.js'
import { startWorkerProcess } from './worker-process.js'

export interface RedisWaitReads {
  /** The job's length, and the request's wait on the server (one wait: no 303). */
  jobSeconds: number
  /** Store reads (`HMGET`) this process sent while the request was in it. */
  reads: number
  /** Every command this process sent meanwhile, by name (scripts are `evalsha`). */
  commands: Record<string, number>
}

/**
 * What one request waiting for a job costs Redis on the HTTP side, its worker in another
 * process: every command this process sends while the request waits, counted on ioredis's
 * `sendCommand` (BullMQ's producer and the store share the class). What the issue asks: no
 * reads while it waits beyond the race check; the result itself is read once its end is heard.
 */
export async function redisWaitReads (jobSeconds = 10): Promise<RedisWaitReads> {
  const queue = `bench-${process.pid}-reads`
  const worker = await startWorkerProcess('redis', queue)
  const { app, url } = await benchApp('redis', undefined, { waitSeconds: 25, consume: false }, queue)
  const commands: Record<string, number> = {}
  const send = Redis.prototype.sendCommand
  try {
    // Warm: the scripts loaded, the subscriber subscribed; not counted.
    await timedFetch(`${url}/sleep?ms=0`)
    Redis.prototype.sendCommand = function (this: Redis, ...args: Parameters<Redis['sendCommand']>) {
      const name = args[0].name.toLowerCase()
      commands[name] = (commands[name] ?? 0) + 1
      return send.apply(this, args)
    }
    const answer = await timedFetch(`${url}/sleep?ms=${jobSeconds * 1000}`)
    if (answer.status !== 200 || answer.hops !== 0) throw new Error(`redis reads: ${answer.status} after ${answer.hops} hops`)
  } finally {
    Redis.prototype.sendCommand = send
    await app.close()
    await worker.close()
  }
  return { jobSeconds, reads: commands.hmget ?? 0, commands }
}
