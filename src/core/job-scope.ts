import { AsyncResource } from 'node:async_hooks'

/**
 * Runs `fn` in the async context this scope was made in (the plugin's registration), never in
 * that of the request that accepted the job, just as a delivery from SQS runs:
 * AsyncLocalStorage (@fastify/request-context) then sees a job run as a request of its own,
 * whichever backend or path started it.
 */
export type JobScope = <T>(fn: () => T) => T

/** A {@link JobScope} named `fastify-long-running.{name}` in async_hooks. */
export function jobScope (name: string): JobScope {
  const resource = new AsyncResource(`fastify-long-running.${name}`)
  return fn => resource.runInAsyncScope(fn)
}
