/** `value` quoted for a POSIX shell: within single quotes, where only `'` needs care (`'\''`). */
export function shellQuote (value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`
}

/**
 * `export NAME='value'` lines for `env`, to paste into a POSIX shell (bash, zsh, dash...): what
 * `npm run dev:aws` prints so that other terminals reach its emulators.
 */
export function exportLines (env: Record<string, string>): string {
  return Object.entries(env).map(([name, value]) => {
    if (!/^[A-Za-z_]\w*$/.test(name)) throw new TypeError(`Expected an environment variable name, got ${JSON.stringify(name)}`)
    return `export ${name}=${shellQuote(value)}\n`
  }).join('')
}
