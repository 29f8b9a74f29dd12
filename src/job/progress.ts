import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import type { JobProgress } from '../core/job-state.js'
import { checkProgress } from './context.js'

/**
 * The shortest gap between two progress writes of one job, ms. Whoever reads progress (a `202`
 * status, the waiting page, the client's `onProgress`) asks again after `Retry-After` (1 s) or
 * polls the item no faster than that once a job is a few seconds old; a write a second is all
 * they can see, and on DynamoDB each write is a billed write unit. The memory store, whose
 * `watch` would show every write at once, is held to the same pace: its readers ask no faster
 * either, each write copies the record and wakes every watcher of the job, Redis pays a round
 * trip, and one rule on every store means the tests on memory run the reporter DynamoDB runs.
 */
export const PROGRESS_INTERVAL_MS = 1000

/** A job's `progress()` and its end. */
export interface ProgressReporter {
  /** The handler's `progress(fraction, message?)`. */
  report: (fraction: number, message?: string) => void
  /**
   * Ends reporting before the job's result is stored: waits for the write in flight, then
   * writes the latest report if it was not written yet (`writeLatest`), and nothing after.
   */
  settle: (writeLatest: boolean) => Promise<void>
}

const same = (a: JobProgress | undefined, b: JobProgress | undefined): boolean =>
  a !== undefined && b !== undefined && a.fraction === b.fraction && a.message === b.message

/**
 * The job's `progress()`: checks each report at once (a bad one throws in the handler), then
 * writes in the background on every store alike: the first report at once, then at most one
 * write per `intervalMs` on the plugin's clock, one in flight at a time; reports made meanwhile
 * collapse into the latest, and a report equal to the one last written is no write. A handler
 * may call it in a tight loop: a 10 s job reporting every 10 ms writes 11 times.
 */
export function progressReporter (
  write: (progress: JobProgress) => Promise<boolean>,
  log: FastifyBaseLogger,
  clock: Clock,
  intervalMs = PROGRESS_INTERVAL_MS
): ProgressReporter {
  let latest: JobProgress | undefined
  let written: JobProgress | undefined
  let writing: Promise<void> | undefined
  let timer: unknown
  let nextAt = -Infinity
  let settled = false

  const store = async (progress: JobProgress): Promise<void> => {
    written = progress
    await write(progress).then(() => {}, (error: unknown) => log.warn({ err: error }, 'progress not stored'))
  }
  const flush = (): void => {
    timer = undefined
    if (settled || writing !== undefined || latest === undefined) return
    const progress = latest
    latest = undefined
    nextAt = clock.now() + intervalMs
    writing = store(progress).finally(() => {
      writing = undefined
      schedule()
    })
  }
  const schedule = (): void => {
    if (settled || timer !== undefined || writing !== undefined || latest === undefined) return
    const wait = nextAt - clock.now()
    if (wait <= 0) flush()
    else timer = clock.setTimeout(flush, wait)
  }
  return {
    report: (fraction, message) => {
      const progress = checkProgress(fraction, message)
      if (settled) return
      latest = same(progress, written) ? undefined : progress
      schedule()
    },
    settle: async writeLatest => {
      settled = true
      if (timer !== undefined) clock.clearTimeout(timer)
      timer = undefined
      await writing
      const progress = latest
      latest = undefined
      if (writeLatest && progress !== undefined && !same(progress, written)) await store(progress)
    }
  }
}
