import { randomBytes } from 'node:crypto'
import { newJobId } from '../core/job-id.js'
import type { JobRecord } from '../index.js'
import { lease, response, soon, type StoreCheck } from './store-fixtures.js'

// What a store keeps beside a job's state: responses up to 6 MiB, requests (claim-check), and
// nothing once the job is deleted.

export const responsesRoundTrip: StoreCheck = async (t, { make }) => {
  const store = await make()
  for (const size of [0, 300 * 1024, 6 * 1024 * 1024]) {
    const id = newJobId()
    await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon() })
    await store.claim(id, lease('w'))
    // Half random, half repetitive: both compressible and incompressible content.
    const body = Buffer.concat([randomBytes(size / 2), Buffer.alloc(size / 2, 'a')])
    t.equal(await store.complete(id, 'w', response(body), soon()), true)
    t.ok((await store.get(id))?.response?.body.equals(body), `${size} bytes`)
  }
  // Text that compresses well, inline and beyond a DynamoDB item once compressed.
  for (const size of [64 * 1024, 6 * 1024 * 1024]) {
    const id = newJobId()
    await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon() })
    await store.claim(id, lease('w'))
    const body = Buffer.from(Array.from({ length: size / 8 }, (_, i) => `${String(i % 1e6).padStart(6, '0')},\n`).join(''))
    t.equal(await store.complete(id, 'w', response(body), soon()), true)
    t.ok((await store.get(id))?.response?.body.equals(body), `${size} bytes of text`)
  }
}

export const claimCheck: StoreCheck = async (t, { make }) => {
  const store = await make()
  const id = newJobId()
  const body = randomBytes(2 * 1024 * 1024)
  const request = { method: 'POST', url: '/echo?x=1', headers: { 'content-type': 'application/x', cookie: 'c=1' }, body }
  await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon(), request })
  const claim = await store.claim(id, lease('w'))
  t.ok(claim.claimed && claim.request?.body?.equals(body))
  t.match(claim, { request: { method: 'POST', url: '/echo?x=1', headers: request.headers } })
  t.equal((await store.get(id) as JobRecord & { request?: unknown }).request, undefined, 'polling reads stay small')
}

export const deleteForgets: StoreCheck = async (t, { make, residue }) => {
  const store = await make()
  const id = newJobId()
  await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon() })
  await store.delete(id)
  t.equal(await store.get(id), undefined)
  await store.delete(newJobId())

  // Large enough that a backend with an item size limit stores both bodies out of line.
  const big = randomBytes(900 * 1024)
  for (const stage of ['pending', 'done']) {
    const id = newJobId()
    await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon(), request: { method: 'POST', url: '/', headers: {}, body: big } })
    if (stage === 'done') {
      await store.claim(id, lease('w'))
      t.equal(await store.complete(id, 'w', response(big), soon()), true)
    }
    t.equal(await residue.count(id) > 0, residue.outOfLine, `${stage}: bodies stored out of line`)
    await store.delete(id)
    t.equal(await store.get(id), undefined, stage)
    t.equal(await residue.count(id), 0, `${stage}: nothing left behind`)
  }
}

export const getMany: StoreCheck = async (t, { make }) => {
  const store = await make()
  if (store.getMany === undefined) {
    t.pass('getMany is optional: this store reads one job at a time')
    return
  }
  const ids = Array.from({ length: 130 }, () => newJobId())
  for (const id of ids) await store.create({ id, waitSeconds: 1, createdAt: Date.now(), expiresAt: soon() })
  const unknown = newJobId()
  const found = await store.getMany([...ids, unknown])
  t.equal(found.size, ids.length)
  t.notOk(found.has(unknown))
  t.match(found.get(ids[0] as string), { status: 'pending' })
}
