import t from 'tap'
import { sleep } from '../src/clock.js'
import { FakeClock } from '../src/testing/fake-clock.js'

t.test('sleep resolves after its time, or as soon as its signal aborts: at once if it already has', async t => {
  const clock = new FakeClock()
  let slept = false
  const plain = sleep(clock, 1000).then(() => { slept = true })
  await clock.advance(999)
  t.notOk(slept)
  await clock.advance(1)
  await plain
  t.ok(slept, 'after its time')

  const stop = new AbortController()
  const cut = sleep(clock, 60_000, stop.signal)
  t.equal(clock.pending, 1)
  stop.abort()
  await cut
  t.equal(clock.pending, 0, 'cut short: its timer is gone')
  await sleep(clock, 60_000, stop.signal)
  t.equal(clock.pending, 0, 'an aborted signal: no wait at all')
})
