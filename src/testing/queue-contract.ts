import type { Test } from 'tap'
import type { Delivery, Disposition, JobQueue } from '../index.js'

/** A new, empty queue for each check: no check sees another's messages. */
export type MakeQueue = () => Promise<JobQueue>

type QueueCheck = (t: Test, make: MakeQueue) => Promise<void>

/** A promise and the function that resolves it: the suite waits on events, never on timers. */
function latch (): { opened: Promise<void>, open: () => void } {
  let open!: () => void
  const opened = new Promise<void>(resolve => { open = resolve })
  return { opened, open }
}

/** Consumes `queue` with `handler` until `done` opens, then stops; resolves with the errors reported. */
async function consumeUntil (
  queue: JobQueue,
  handler: (delivery: Delivery) => Promise<Disposition>,
  done: Promise<void>,
  concurrency = 4
): Promise<unknown[]> {
  const errors: unknown[] = []
  const consumer = queue.consume(handler, { concurrency, onError: error => errors.push(error) })
  await done
  await consumer.stop()
  return errors
}

const deliversExactBody: QueueCheck = async (t, make) => {
  const queue = await make()
  const body = JSON.stringify({ text: 'ünïcødé ✓', n: 1 })
  await queue.send(body)
  const done = latch()
  const seen: Delivery[] = []
  await consumeUntil(queue, async delivery => {
    seen.push(delivery)
    done.open()
    return { ack: true }
  }, done.opened)
  t.equal(seen.length, 1)
  t.equal(seen[0]?.body, body)
  t.equal(seen[0]?.receiveCount, 1)
}

const retriesComeBack: QueueCheck = async (t, make) => {
  const queue = await make()
  await queue.send('again')
  const done = latch()
  const counts: number[] = []
  const errors = await consumeUntil(queue, async delivery => {
    counts.push(delivery.receiveCount)
    await delivery.extend(5)
    if (counts.length === 1) return { ack: false, delaySeconds: 0 }
    if (counts.length === 2) throw new Error('handler crashed')
    done.open()
    return { ack: true }
  }, done.opened)
  // Strictly increasing, not necessarily by one: local-aws-sqs also counts visibility changes.
  t.equal(counts[0], 1)
  t.equal(counts.length, 3)
  t.ok(counts.every((count, i) => i === 0 || count > (counts[i - 1] as number)), `increasing: ${counts.join(', ')}`)
  t.equal(errors.length, 1)
}

const boundedConcurrency: QueueCheck = async (t, make) => {
  const queue = await make()
  for (let i = 0; i < 12; i++) await queue.send(`m${i}`)
  const done = latch()
  let inHand = 0
  let most = 0
  let handled = 0
  await consumeUntil(queue, async () => {
    inHand += 1
    most = Math.max(most, inHand)
    await new Promise(resolve => setImmediate(resolve))
    inHand -= 1
    handled += 1
    if (handled === 12) done.open()
    return { ack: true }
  }, done.opened, 3)
  t.ok(most <= 3, `at most 3 at once (saw ${most})`)
  t.equal(handled, 12)
}

const delays: QueueCheck = async (t, make) => {
  const queue = await make()
  await queue.send('later', { delaySeconds: 1 })
  await queue.send('now', { delaySeconds: 0 })
  const done = latch()
  const seen: string[] = []
  await consumeUntil(queue, async delivery => {
    seen.push(delivery.body)
    if (seen.length === 2) done.open()
    return { ack: true }
  }, done.opened)
  t.same(seen, ['now', 'later'])
  for (const delaySeconds of [-1, 901, 1.5, Number.NaN, '5']) {
    await t.rejects(queue.send('x', { delaySeconds } as never), { code: 'FST_LONG_RUNNING_INVALID_OPTION' }, String(delaySeconds))
  }
}

const slotsBusyElsewhere: QueueCheck = async (t, make) => {
  const queue = await make()
  for (let i = 0; i < 4; i++) await queue.send(`s${i}`)
  let busy = 2
  let inHand = 0
  let most = 0
  let handled = 0
  const done = latch()
  const consumer = queue.consume(async () => {
    inHand += 1
    most = Math.max(most, inHand + busy)
    await new Promise(resolve => setImmediate(resolve))
    inHand -= 1
    handled += 1
    if (handled === 4) done.open()
    return { ack: true }
  }, { concurrency: 2, onError: t.error, busyElsewhere: () => busy })
  t.equal(handled, 0)
  busy = 1
  t.type(consumer.freed, 'function')
  consumer.freed?.()
  await done.opened
  await consumer.stop()
  t.ok(most <= 2, `never more than the concurrency in all (saw ${most})`)
}

const largeMessagesRefused: QueueCheck = async (t, make) => {
  const queue = await make()
  await t.rejects(queue.send('x'.repeat(queue.maxMessageBytes + 1)), { code: 'FST_LONG_RUNNING_MESSAGE_TOO_LARGE' })
  await queue.send('y'.repeat(queue.maxMessageBytes - 10))
}

const CHECKS: Record<string, QueueCheck> = {
  'delivers the exact body; ack removes the message': deliversExactBody,
  'retry brings the message back with a higher receive count; a throwing handler is retried too': retriesComeBack,
  'never more deliveries in hand than the concurrency': boundedConcurrency,
  'a delayed message comes after an immediate one sent later; bad delays are refused': delays,
  'slots busy elsewhere are left free until freed() says so': slotsBusyElsewhere,
  'a message larger than maxMessageBytes is refused': largeMessagesRefused
}

/**
 * The contract every `JobQueue` passes: the memory, SQS and Redis queues run these very checks
 * (at-least-once delivery, receive counts, back-offs, concurrency, delays, size limits), each
 * as a tap subtest of `t`. `make` returns a new, empty queue each time; give it
 * `retryDelaySeconds: 0` (or your queue's equivalent) so that retries come back at once, and a
 * `maxMessageBytes` small enough to send (the check sends a message of that size).
 *
 * @example
 * import t from 'tap'
 * import { queueContract } from 'fastify-long-running/testing'
 *
 * t.test('my queue', async t => {
 *   queueContract(t, async () => myQueue({ name: `contract-${Math.random()}`, retryDelaySeconds: 0 }))
 * })
 */
export function queueContract (t: Test, make: MakeQueue): void {
  for (const [name, check] of Object.entries(CHECKS)) t.test(name, async t => { await check(t, make) })
}
