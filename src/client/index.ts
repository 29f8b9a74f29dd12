/**
 * `fastify-long-running/client`: the browser and Node client of long-running routes. It
 * imports nothing from the plugin (and nothing from Node), so bundlers keep it small.
 */
export { fetchLongRunning, type FetchLongRunningOptions, type LongRunningProgress } from './fetch-long-running.js'
