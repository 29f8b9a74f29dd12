import { describe, expect, test } from 'tstyche'
import { fetchLongRunning, type LongRunningProgress } from '../../src/client/index.js'

describe('fetchLongRunning', () => {
  test('takes what fetch takes, and resolves with a Response', () => {
    expect(fetchLongRunning('https://api.example/report', { method: 'POST', body: 'x' })).type.toBe<Promise<Response>>()
    expect(fetchLongRunning(new URL('https://api.example/report'))).type.toBe<Promise<Response>>()
    expect(fetchLongRunning(new Request('https://api.example/report'))).type.toBe<Promise<Response>>()
  })
  test('options: progress, signal, a time limit, a custom fetch, the key', () => {
    expect(fetchLongRunning('/r', {}, {
      onProgress: (progress) => { expect(progress).type.toBe<LongRunningProgress>() },
      signal: new AbortController().signal,
      timeoutMs: 60_000,
      fetch: async (request) => await fetch(request),
      waitSeconds: 10,
      idempotencyKey: 'k',
      retries: 3
    })).type.not.toRaiseError()
    expect(fetchLongRunning('/r', {}, { fetch })).type.not.toRaiseError()
    expect(fetchLongRunning('/r', {}, { idempotencyKey: false })).type.not.toRaiseError()
  })
  test('anything else is a type error', () => {
    expect(fetchLongRunning('/r', {}, { onProgress: 5 })).type.toRaiseError()
    expect(fetchLongRunning('/r', {}, { idempotencyKey: true })).type.toRaiseError()
    expect(fetchLongRunning('/r', {}, { timeout: 5 })).type.toRaiseError()
  })
  test('progress: status, fraction and message as the 202 had them', () => {
    expect<LongRunningProgress['status']>().type.toBe<'pending' | 'running'>()
    expect<LongRunningProgress['fraction']>().type.toBe<number | undefined>()
  })
})
