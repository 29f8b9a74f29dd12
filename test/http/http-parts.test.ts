import t from 'tap'
import { keyedRequest, keyOf } from '../../src/http/idempotency.js'
import { basePathOf, nextHop, parseHop, resultLocation } from '../../src/http/location.js'
import { parsePrefer } from '../../src/http/prefer.js'
import { isJobId, newJobId } from '../../src/core/job-id.js'
import type { FastifyRequest } from 'fastify'

t.test('Prefer (RFC 7240): respond-async, wait and return=minimal, case-insensitive, quoted, several headers', async t => {
  t.same(parsePrefer(undefined), { respondAsync: false, returnMinimal: false })
  t.same(parsePrefer('respond-async'), { respondAsync: true, returnMinimal: false })
  t.same(parsePrefer('Respond-Async ; foo=bar, WAIT=10'), { respondAsync: true, returnMinimal: false, waitSeconds: 10 })
  t.same(parsePrefer(['wait="3"', 'respond-async']), { respondAsync: true, returnMinimal: false, waitSeconds: 3 })
  t.same(parsePrefer('wait=5, wait=1'), { respondAsync: false, returnMinimal: false, waitSeconds: 5 }, 'the first wait counts')
  t.same(parsePrefer('respond-async, Return="Minimal"'), { respondAsync: true, returnMinimal: true })
  t.same(parsePrefer('return=representation'), { respondAsync: false, returnMinimal: false })
  for (const bad of ['wait=-1', 'wait=1.5', 'wait=', 'wait=abc', 'wait=9999999999', 'respond-asynchronously', ',,,', '=']) {
    t.same(parsePrefer(bad), { respondAsync: false, returnMinimal: false }, `ignored: ${bad}`)
  }
})

t.test('hop values', async t => {
  t.equal(parseHop(undefined), 0)
  t.equal(parseHop('0'), 0)
  t.equal(parseHop('9999'), 9999)
  for (const bad of ['', '-1', '1e3', '10000', ' 1', ['1', '2']]) {
    t.throws(() => parseHop(bad), { name: 'FastifyError', message: 'Expected `hop` to be a whole number from 0 to 9999' }, JSON.stringify(bad))
  }
  t.equal(nextHop(1), 2)
  t.equal(nextHop(9999), 1, 'wraps')
  t.equal(resultLocation('/prod', 'abc', 3), '/prod/async-response/abc?hop=3')
})

t.test('job ids: random UUID v4, strictly lower-case', async t => {
  const ids = new Set(Array.from({ length: 1000 }, newJobId))
  t.equal(ids.size, 1000)
  for (const id of ids) t.ok(isJobId(id))
  const id = newJobId()
  for (const bad of [id.toUpperCase(), id.slice(1), `${id}0`, id.replace(/-/g, ''), `{${id}}`, 42, undefined, id.replace(/^./, 'g')]) {
    t.notOk(isJobId(bad), String(bad))
  }
})

t.test('base path from the API Gateway event, never from headers', async t => {
  const request = (url: string, event?: unknown): FastifyRequest =>
    ({ url, headers: { host: 'evil.example', 'x-forwarded-prefix': '/evil' }, awsLambda: { event } }) as unknown as FastifyRequest
  t.equal(basePathOf(request('/payload?x=1', { path: '/payload', requestContext: { path: '/prod/payload' } })), '/prod')
  t.equal(basePathOf(request('/payload', { rawPath: '/payload', requestContext: { http: { path: '/v2/payload' } } })), '/v2')
  t.equal(basePathOf(request('/payload', { requestContext: { path: '/payload' } })), '', 'no stage in the path')
  t.equal(basePathOf(request('/payload', { requestContext: { path: '/other' } })), '', 'unrelated path')
  const renamed = Object.assign(request('/payload', {}), { lambda: { event: { requestContext: { path: '/stage/payload' } } } })
  t.equal(basePathOf(renamed, 'lambda'), '/stage', '@fastify/aws-lambda\'s decorationPropertyName, named by awsLambdaProperty')
  t.equal(basePathOf(request('/payload', { requestContext: { path: '/a b/payload' } })), '', 'not a clean prefix')
  t.equal(basePathOf(request('/payload', { requestContext: { elb: {} } })), '', 'ALB: none')
  t.equal(basePathOf(request('/payload')), '', 'not on Lambda')
})

t.test('Idempotency-Key values: one Structured Field string or bare token; scope and fingerprint digests', async t => {
  const settings = { header: 'idempotency-key', required: false, strict: false }
  t.equal(keyOf('"a\\"b"', settings), 'a"b')
  t.equal(keyOf('abc', settings), 'abc')
  t.equal(keyOf(undefined, settings), undefined)
  t.throws(() => keyOf(undefined, { ...settings, required: true }), { code: 'FST_LONG_RUNNING_IDEMPOTENCY_KEY_MISSING' })
  t.throws(() => keyOf(['a', 'b'], settings), { code: 'FST_LONG_RUNNING_IDEMPOTENCY_KEY_INVALID' }, 'two values')

  const request = { method: 'POST', url: '/pay?x=1', headers: { 'content-type': 'text/plain' }, body: Buffer.from('1') }
  const base = keyedRequest('k', request, undefined)
  t.match(base, { key: /^[\w-]{43}$/, fingerprint: /^[\w-]{43}$/ }, 'digests only: the key itself is never stored')
  t.same(keyedRequest('k', { ...request, url: '/pay?x=2' }, undefined).key, base.key, 'the query is not part of the scope...')
  t.not(keyedRequest('k', { ...request, url: '/pay?x=2' }, undefined).fingerprint, base.fingerprint, '...but of the fingerprint')
  for (const other of [keyedRequest('k', request, 'alice'), keyedRequest('k', { ...request, url: '/refund?x=1' }, undefined), keyedRequest('k', { ...request, method: 'PUT' }, undefined), keyedRequest('k2', request, undefined)]) {
    t.not(other.key, base.key, 'caller, path, method and key each make another key')
  }
  t.not(keyedRequest('k', { ...request, body: Buffer.from('2') }, undefined).fingerprint, base.fingerprint)
  t.not(keyedRequest('k', { ...request, headers: {} }, undefined).fingerprint, base.fingerprint)
})
