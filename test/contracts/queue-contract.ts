import type { Test } from 'tap'
import type { Delivery, Disposition, JobQueue } from '../../src/index.js'
import { Gate } from '../helpers/gate.js'

/** The contract every JobQueue passes, in memory and on the SQS emulator alike. */
export function queueContract (t: Test, make: () => Promise<JobQueue>): void {
  const consumeUntil = async (
    queue: JobQueue,
    handler: (delivery: Delivery) => Promise<Disposition>,
    done: Gate,
    concurrency = 4
  ): Promise<unknown[]> => {
    const errors: unknown[] = []
    const consumer = queue.consume(handler, { concurrency, onError: error => errors.push(error) })
    await done.opened
    await consumer.stop()
    return errors
  }

  t.test('delivers the exact body; ack removes the message', async t => {
    const queue = await make()
    const body = JSON.stringify({ text: 'ünïcødé ✓', n: 1 })
    await queue.send(body)
    const done = new Gate()
    const seen: Delivery[] = []
    await consumeUntil(queue, async delivery => {
      seen.push(delivery)
      done.open()
      return { ack: true }
    }, done)
    t.equal(seen.length, 1)
    t.equal(seen[0]?.body, body)
    t.equal(seen[0]?.receiveCount, 1)
  })

  t.test('retry brings the message back with a higher receive count; a throwing handler is retried too', async t => {
    const queue = await make()
    await queue.send('again')
    const done = new Gate()
    const counts: number[] = []
    const errors = await consumeUntil(queue, async delivery => {
      counts.push(delivery.receiveCount)
      await delivery.extend(5)
      if (counts.length === 1) return { ack: false, delaySeconds: 0 }
      if (counts.length === 2) throw new Error('handler crashed')
      done.open()
      return { ack: true }
    }, done)
    // Strictly increasing, not necessarily by one: local-aws-sqs also counts visibility changes.
    t.equal(counts[0], 1)
    t.equal(counts.length, 3)
    t.ok(counts.every((count, i) => i === 0 || count > (counts[i - 1] as number)), `increasing: ${counts.join(', ')}`)
    t.equal(errors.length, 1)
  })

  t.test('never more deliveries in hand than the concurrency', async t => {
    const queue = await make()
    for (let i = 0; i < 12; i++) await queue.send(`m${i}`)
    const done = new Gate()
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
    }, done, 3)
    t.ok(most <= 3, `at most 3 at once (saw ${most})`)
    t.equal(handled, 12)
  })

  t.test('a delayed message comes after an immediate one sent later; bad delays are refused', async t => {
    const queue = await make()
    await queue.send('later', { delaySeconds: 1 })
    await queue.send('now', { delaySeconds: 0 })
    const done = new Gate()
    const seen: string[] = []
    await consumeUntil(queue, async delivery => {
      seen.push(delivery.body)
      if (seen.length === 2) done.open()
      return { ack: true }
    }, done)
    t.same(seen, ['now', 'later'])
    for (const delaySeconds of [-1, 901, 1.5, Number.NaN, '5']) {
      await t.rejects(queue.send('x', { delaySeconds } as never), { code: 'FST_LONG_RUNNING_INVALID_OPTION' }, String(delaySeconds))
    }
  })

  t.test('slots busy elsewhere are left free until freed() says so', async t => {
    const queue = await make()
    for (let i = 0; i < 4; i++) await queue.send(`s${i}`)
    let busy = 2
    let inHand = 0
    let most = 0
    let handled = 0
    const done = new Gate()
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
  })

  t.test('a message larger than maxMessageBytes is refused', async t => {
    const queue = await make()
    await t.rejects(queue.send('x'.repeat(queue.maxMessageBytes + 1)), { code: 'FST_LONG_RUNNING_MESSAGE_TOO_LARGE' })
    await queue.send('y'.repeat(queue.maxMessageBytes - 10))
  })
}
