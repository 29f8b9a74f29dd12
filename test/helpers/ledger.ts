import type { Test } from 'tap'

interface Entry {
  expected: { status: number, body: Buffer }
  final?: { status: number, body: Buffer }
  runs: number
}

/**
 * The Jepsen-style ledger of a fault test: every accepted request with the response it must
 * end with, every handler run, every final response. `check` then proves that nothing was
 * lost, nothing answered wrongly, and nothing ran more often than allowed.
 */
export class Ledger {
  readonly #entries = new Map<string, Entry>()

  accept (id: string, expected: { status: number, body: Buffer }): void {
    this.#entries.set(id, { expected, runs: 0 })
  }

  ran (id: string): void {
    const entry = this.#entries.get(id)
    if (entry !== undefined) entry.runs += 1
  }

  finished (id: string, status: number, body: Buffer): void {
    const entry = this.#entries.get(id)
    if (entry === undefined) throw new Error(`a response for ${id}, which was never accepted`)
    if (entry.final !== undefined) throw new Error(`a second final response for ${id}`)
    entry.final = { status, body }
  }

  /** Every job: one final response, the expected one; runs within `maxRuns`. Returns the report. */
  check (t: Test, maxRuns: number): { jobs: number, lost: number, wrong: number, extraRuns: number } {
    let lost = 0
    let wrong = 0
    let extraRuns = 0
    for (const [id, entry] of this.#entries) {
      if (entry.final === undefined) lost += 1
      else if (entry.final.status !== entry.expected.status || !entry.final.body.equals(entry.expected.body)) {
        wrong += 1
        t.fail(`${id}: ${entry.final.status} ${entry.final.body.subarray(0, 80).toString()}`)
      }
      if (entry.runs > maxRuns) t.fail(`${id} ran ${entry.runs} times`)
      extraRuns += Math.max(0, entry.runs - 1)
    }
    const report = { jobs: this.#entries.size, lost, wrong, extraRuns }
    t.equal(lost, 0, `no job lost (${JSON.stringify(report)})`)
    t.equal(wrong, 0, 'no wrong response')
    return report
  }
}
