// `fastify-long-running/testing`: the contract suites every queue, store and result-body adapter
// passes, for authors of their own backends. They run under tap (an optional peer dependency).
export { storeContract } from './store-contract.js'
export type { MakeStore, StoreResidue } from './store-fixtures.js'
export { queueContract, type MakeQueue } from './queue-contract.js'
export { resultsContract, type MakeResults } from './results-contract.js'
export { FakeClock } from './fake-clock.js'
