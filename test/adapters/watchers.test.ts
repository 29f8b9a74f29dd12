import t from 'tap'
import { Watchers } from '../../src/store/watchers.js'

t.test('watchers: listeners by id, each told with its own copy; ids lists the watched ones', async t => {
  const watchers = new Watchers()
  const seen: string[] = []
  const stopA = watchers.add('a', record => seen.push(`a1:${record?.status ?? 'gone'}`))
  watchers.add('a', record => seen.push(`a2:${record?.status ?? 'gone'}`))
  const stopB = watchers.add('b', record => seen.push(`b:${record?.status ?? 'gone'}`))
  t.same(watchers.ids(), ['a', 'b'])
  watchers.notify('a', { id: 'a', status: 'done', attempt: 1, waitSeconds: 1, createdAt: 0, expiresAt: 1 })
  watchers.notify('b', undefined)
  t.same(seen, ['a1:done', 'a2:done', 'b:gone'])
  stopB()
  stopA()
  t.same(watchers.ids(), ['a'], 'an id stays watched while one listener is left')
  t.ok(watchers.has('a'))
  t.notOk(watchers.has('b'))
})
