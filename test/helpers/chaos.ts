import { addMiddleware } from './faults.js'
import { pick } from './random.js'

/** The kinds of failure AWS services show, and how each reaches the caller. */
export const FAULT_KINDS = {
  sqs: ['ThrottlingException', 'InternalError', 'ServiceUnavailable', 'TimeoutError', 'lost-reply'],
  dynamodb: ['ProvisionedThroughputExceededException', 'ThrottlingException', 'InternalServerError', 'ServiceUnavailable', 'TimeoutError', 'lost-reply']
} as const

/**
 * Fails each call of a real SDK client with probability `rate`, with a kind drawn from the
 * seeded PRNG. `lost-reply` lets the call reach the service, then throws: the write happened
 * but the caller saw an error. Counts what it injected, by kind and by `kind:Command`.
 */
export function chaos (
  client: Parameters<typeof addMiddleware>[0],
  kinds: readonly string[],
  rate: number,
  next: () => number
): Map<string, number> {
  const injected = new Map<string, number>()
  addMiddleware(client, (call, context) => async (args) => {
    if (next() >= rate) return await call(args)
    const kind = pick(next, kinds)
    injected.set(kind, (injected.get(kind) ?? 0) + 1)
    injected.set(`${kind}:${context.commandName}`, (injected.get(`${kind}:${context.commandName}`) ?? 0) + 1)
    const error = Object.assign(new Error(`chaos: ${kind} on ${context.commandName}`), {
      name: kind === 'lost-reply' ? 'TimeoutError' : kind,
      $metadata: { httpStatusCode: kind.includes('Throttl') || kind.includes('Provisioned') ? 400 : 500 }
    })
    if (kind === 'lost-reply') await call(args)
    throw error
  })
  return injected
}
