import type { FastifyBaseLogger } from 'fastify'

/**
 * The logger of a job run's request, quiet about the job's own stop. A handler that throws
 * because its job was stopped (cancelled by its client, past its time limit, handed back at
 * shutdown, its lease taken over) ends the replay with a 5xx that no client is ever sent, and
 * Fastify's error handler would log it as a server error: operators would be paged for a closed
 * tab. Once the job's `signal` has aborted, error lines are written at `info`, without the
 * replay's status, and name why the job stopped (`stoppedBy`, the reason's code).
 */
export function runLogger (log: FastifyBaseLogger, signal: AbortSignal): FastifyBaseLogger {
  const error = log.error.bind(log)
  // A logger of its own, over `log`: `log` may be shared by every request (Fastify's silent
  // logger, whose child() is itself), and must never gain this run's signal.
  const run: FastifyBaseLogger = Object.create(log)
  run.error = ((first: unknown, ...rest: unknown[]) => {
    if (!signal.aborted) return error(first as object, ...rest as [])
    const stoppedBy = (signal.reason as { code?: unknown } | undefined)?.code
    const { res: _status, ...fields } = typeof first === 'object' && first !== null ? first as Record<string, unknown> : { msg: first }
    log.info({ ...fields, stoppedBy }, 'job run ended by its stop')
  }) as FastifyBaseLogger['error']
  return run
}
