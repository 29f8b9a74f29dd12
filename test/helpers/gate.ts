/** A latch a test opens when it decides: jobs wait on it instead of on timers. */
export class Gate {
  readonly opened: Promise<void>
  #open!: () => void
  isOpen = false

  constructor () {
    this.opened = new Promise(resolve => { this.#open = resolve })
  }

  open (): void {
    this.isOpen = true
    this.#open()
  }
}

/** Named gates, created on first use by either side. */
export class Gates {
  readonly #gates = new Map<string, Gate>()

  get (name: string): Gate {
    let gate = this.#gates.get(name)
    if (gate === undefined) {
      gate = new Gate()
      this.#gates.set(name, gate)
    }
    return gate
  }

  open (name: string): void {
    this.get(name).open()
  }

  openAll (): void {
    for (const gate of this.#gates.values()) gate.open()
  }
}
