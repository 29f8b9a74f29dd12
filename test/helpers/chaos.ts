import type { TestApp } from './app.js'
import { addMiddleware } from './faults.js'
import { Ledger } from './ledger.js'
import { int, pick } from './random.js'

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

/** What the clients of a chaos run saw: jobs by route name, and the 503s they retried. */
export interface ChaosClients {
  ledger: Ledger
  jobsByName: Map<string, string>
  rejected: { enqueue: number, reads: number }
}

/**
 * Runs `jobs` clients at once against `test`'s `/job/:name` route (or `urlOf(name)`, a route that
 * answers as it does: 201 with the request's bytes), each as a client of a failing
 * backend does: accepted with `Prefer: respond-async` (a 503 means nothing was accepted, and it
 * sends a new job), then followed to its final response (a 503 of a read is asked again). The
 * ledger then holds every accepted job, its final response and its handler runs.
 */
export async function runChaosClients (test: TestApp, jobs: number, next: () => number, urlOf: (name: string) => string = name => `/job/${name}?open=1`): Promise<ChaosClients> {
  const clients: ChaosClients = { ledger: new Ledger(), jobsByName: new Map(), rejected: { enqueue: 0, reads: 0 } }
  const { ledger, jobsByName, rejected } = clients
  const client = async (i: number): Promise<void> => {
    const payload = Buffer.from(`job ${i} `.repeat(1 + int(next, 40)))
    let location: string | undefined
    for (let tries = 0; location === undefined; tries++) {
      const name = `j${i}t${tries}`
      const response = await test.app.inject({ method: 'POST', url: urlOf(name), payload, headers: { 'content-type': 'application/x-chaos', prefer: 'respond-async' } })
      if (response.statusCode === 503) { rejected.enqueue += 1; continue }
      location = response.headers.location as string
      const id = /async-response\/([^?]+)/.exec(location)?.[1] as string
      ledger.accept(id, { status: 201, body: payload })
      jobsByName.set(name, id)
    }
    for (;;) {
      const response = await test.app.inject({ url: location })
      if (response.statusCode === 503) { rejected.reads += 1; continue }
      if (response.statusCode === 303 || response.statusCode === 202) { location = response.headers.location as string; continue }
      ledger.finished(/async-response\/([^?]+)/.exec(location)?.[1] as string, response.statusCode, response.rawPayload)
      return
    }
  }
  await Promise.all(Array.from({ length: jobs }, async (_, i) => await client(i)))
  for (const [name, count] of test.runs) {
    const id = jobsByName.get(name)
    if (id === undefined) continue
    for (let run = 0; run < count; run++) ledger.ran(id)
  }
  return clients
}
