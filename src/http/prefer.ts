/** The preferences of an RFC 7240 `Prefer` header that this plugin honours. */
export interface Preferences {
  /** `respond-async`: answer 202 at once instead of waiting. */
  respondAsync: boolean
  /** `wait=N`: wait at most N seconds (never longer than configured). */
  waitSeconds?: number
}

const DELTA_SECONDS = /^\d{1,9}$/

/**
 * Parses `Prefer` (RFC 7240 §2): comma-separated preferences, names case-insensitive, values
 * optionally quoted, parameters after `;` ignored. Unknown or malformed preferences are
 * ignored, as the RFC asks; several headers count as one list.
 */
export function parsePrefer (header: string | string[] | undefined): Preferences {
  const preferences: Preferences = { respondAsync: false }
  if (header === undefined) return preferences
  for (const item of (Array.isArray(header) ? header.join(',') : header).split(',')) {
    const [token = ''] = item.split(';')
    const equals = token.indexOf('=')
    const name = (equals === -1 ? token : token.slice(0, equals)).trim().toLowerCase()
    const value = equals === -1 ? '' : token.slice(equals + 1).trim().replace(/^"(.*)"$/, '$1')
    if (name === 'respond-async') preferences.respondAsync = true
    else if (name === 'wait' && DELTA_SECONDS.test(value) && preferences.waitSeconds === undefined) {
      preferences.waitSeconds = Number(value)
    }
  }
  return preferences
}
