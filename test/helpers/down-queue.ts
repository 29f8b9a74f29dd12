import { memoryQueue, type JobQueue } from '../../src/index.js'

/** The embedded (in-process) queue, down until `up()`: its sends fail meanwhile. */
export function downMemoryQueue (): { queue: JobQueue, up: () => void } {
  const queue = memoryQueue()
  const send = queue.send.bind(queue)
  let down = true
  queue.send = async (body, options) => {
    if (down) throw new Error('queue down')
    await send(body, options)
  }
  return { queue, up: () => { down = false } }
}
