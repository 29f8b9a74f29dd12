import type { FastifyBaseLogger } from 'fastify'
import type { JobProgress } from '../core/job-state.js'
import { checkProgress } from './context.js'

/**
 * The job's `progress()`: checks each report at once (a bad one throws in the handler), then
 * writes in the background, one write in flight at a time; reports made meanwhile collapse
 * into the latest, so a handler may call it in a tight loop.
 */
export function progressReporter (
  write: (progress: JobProgress) => Promise<boolean>,
  log: FastifyBaseLogger
): (fraction: number, message?: string) => void {
  let next: JobProgress | undefined
  let writing = false
  const flush = async (): Promise<void> => {
    writing = true
    while (next !== undefined) {
      const progress = next
      next = undefined
      await write(progress).catch((error: unknown) => log.warn({ err: error }, 'progress not stored'))
    }
    writing = false
  }
  return (fraction, message) => {
    next = checkProgress(fraction, message)
    if (!writing) void flush()
  }
}
