/** A rule of the fault injector: which commands fail, how often, and how. */
export interface Fault {
  /** SDK command name, e.g. `ReceiveMessageCommand`. */
  command: string
  /** How many matching calls fail (then they pass again). @default 1 */
  times?: number
  /** `before`: the call never reaches the service; `after`: it did, but the caller sees an error. */
  when?: 'before' | 'after'
  /** The error's name, e.g. `ThrottlingException`. @default 'InternalServerError' */
  name?: string
}

type Handler = (args: { input: Record<string, any> }) => Promise<unknown>
type Middleware = (next: Handler, context: { commandName: string }) => Handler

interface Client {
  middlewareStack: { add: (middleware: any, options: any) => void }
}

/**
 * Adds a middleware to a real SDK client (typed loosely: any client fits). At `initialize` it
 * sees each call once; at `deserialize` it sits below the SDK's retries and sees every try.
 */
export function addMiddleware (client: Client, middleware: Middleware, step: 'initialize' | 'deserialize' = 'initialize'): void {
  client.middlewareStack.add(middleware, { step, name: `test-${Math.random()}` })
}

/**
 * Adds a middleware to a real AWS SDK client that fails chosen commands: the failures reach
 * the code under test through the SDK exactly as the service's would.
 */
export function injectFaults (client: Client, faults: Fault[]): { injected: Map<string, number> } {
  const left = faults.map(fault => ({ ...fault, left: fault.times ?? 1 }))
  const injected = new Map<string, number>()
  const fail = (command: string, name: string): never => {
    injected.set(command, (injected.get(command) ?? 0) + 1)
    throw Object.assign(new Error(`injected ${name}`), { name, $metadata: { httpStatusCode: 500 } })
  }
  addMiddleware(client, (next, context) => async (args) => {
    const fault = left.find(rule => rule.command === context.commandName && rule.left > 0)
    if (fault === undefined) return await next(args)
    fault.left -= 1
    if ((fault.when ?? 'before') === 'before') fail(context.commandName, fault.name ?? 'InternalServerError')
    await next(args)
    return fail(context.commandName, fault.name ?? 'InternalServerError')
  })
  return { injected }
}
