import { randomBytes } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { JobRecord } from '../core/job-state.js'
import { refreshing } from './replies.js'

/**
 * Whether the request is a browser tab navigating, which gets the waiting page instead of a 303
 * once a wait ends unfinished: its `Accept` ranks `text/html` above JSON and above the wildcard
 * range (every browser's navigation does; `curl`, `fetch` and the client send the wildcard or
 * JSON), and it is a navigation: `Sec-Fetch-Mode: navigate` to a document or frame, or, where
 * the browser sends no `Sec-Fetch-*` (origins that are not secure, plain HTTP), the
 * `Upgrade-Insecure-Requests: 1` that browsers send with navigations only. So a page's `fetch()`
 * or XHR asking for HTML, a prefetch, and `curl -H 'Accept: text/html'` keep following 303s.
 */
export function prefersWaitingPage (headers: FastifyRequest['headers']): boolean {
  const mode = headers['sec-fetch-mode']
  const dest = headers['sec-fetch-dest']
  const navigating = mode === undefined ? headers['upgrade-insecure-requests'] === '1' : mode === 'navigate'
  if (!navigating) return false
  if (dest !== undefined && dest !== 'document' && dest !== 'iframe' && dest !== 'frame') return false
  // A speculative load (prefetch, prerender) would keep polling in a page nobody sees.
  if (String(headers['sec-purpose'] ?? headers.purpose ?? '').includes('prefetch')) return false
  const ranges = mediaRanges(headers.accept ?? '*/*')
  const html = qualityOf(ranges, 'text/html')
  return html > qualityOf(ranges, 'application/json') && html > (ranges.get('*/*') ?? 0)
}

/** `Accept`'s media ranges (parameters but `q` ignored) and their weights; the highest where one repeats. */
function mediaRanges (accept: string): Map<string, number> {
  const ranges = new Map<string, number>()
  for (const item of accept.toLowerCase().split(',')) {
    const [range = '', ...parameters] = item.split(';').map(part => part.trim())
    const q = parameters.find(parameter => parameter.startsWith('q='))?.slice(2)
    const weight = q === undefined ? 1 : /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/.test(q) ? Number(q) : undefined
    if (!/^[^/\s]+\/[^/\s]+$/.test(range) || weight === undefined) continue
    ranges.set(range, Math.max(weight, ranges.get(range) ?? 0))
  }
  return ranges
}

/** The weight of `type` (RFC 9110 §12.5.1: its most specific range), 0 where none matches. */
function qualityOf (ranges: Map<string, number>, type: string): number {
  return ranges.get(type) ?? ranges.get(`${type.split('/')[0] as string}/*`) ?? ranges.get('*/*') ?? 0
}

/**
 * The waiting page: `202` with `Location`, `Retry-After` and `Refresh` as the JSON `202`
 * has them, so that with scripts off (or blocked by a CSP) the tab moves to the next wait on
 * its own, and shows the result once a wait ends with it. With scripts on, the page cancels the
 * `Refresh` and polls the job's status instead, moving its bar without a reload, then navigates
 * to `location` once the job is done (or gone): the result arrives there as a navigation, a
 * download or a 303 to S3 included, as it would have synchronously.
 *
 * Safe under a strict CSP: the script and style carry the nonces of @fastify/helmet
 * (`enableCSPNonces`: `reply.cspNonce`) where the app has them; an app that sends no CSP of
 * its own gets the page's, which allows nothing but them and requests to this origin.
 */
export async function sendWaitingPage (reply: FastifyReply, record: JobRecord, location: string): Promise<FastifyReply> {
  const nonces = helmetNonces(reply) ?? { script: nonce(), style: nonce() }
  if (reply.getHeader('content-security-policy') === undefined) {
    // No frame-ancestors: the page has nothing to click, and a frame the app allows must keep working.
    reply.header('content-security-policy', `default-src 'none'; script-src 'nonce-${nonces.script}'; style-src 'nonce-${nonces.style}'; connect-src 'self'; base-uri 'none'; form-action 'none'`)
  }
  // The same URL answers others with a 303 or JSON: no cache may hand this page to them.
  reply.header('vary', 'Accept, Sec-Fetch-Mode, Sec-Fetch-Dest, Upgrade-Insecure-Requests, Sec-Purpose')
  return await refreshing(reply, location).type('text/html; charset=utf-8').send(waitingPage(record, location, nonces))
}

interface Nonces { script: string, style: string }

function helmetNonces (reply: FastifyReply): Nonces | undefined {
  const nonces = (reply as unknown as { cspNonce?: Partial<Nonces> | null }).cspNonce
  return typeof nonces?.script === 'string' && typeof nonces.style === 'string' ? { script: nonces.script, style: nonces.style } : undefined
}

function nonce (): string {
  return randomBytes(16).toString('base64')
}

const HEADINGS = { pending: 'Waiting to start…', running: 'Working on it…', done: 'Done: opening the result…' }

function waitingPage (record: JobRecord, location: string, nonces: Nonces): string {
  const fraction = record.progress?.fraction
  const value = fraction === undefined ? '' : ` value="${fraction}"`
  const percent = fraction === undefined ? '' : `${Math.round(fraction * 100)} %`
  const heading = record.status === 'pending' ? HEADINGS.pending : HEADINGS.running
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${heading}</title>
<style nonce="${escape(nonces.style)}">
body { font: 1rem/1.5 system-ui, sans-serif; margin: 0; min-height: 100vh; display: grid; place-items: center }
main { width: min(30rem, 90vw) }
h1 { font-size: 1.4rem; font-weight: 600 }
progress { width: 100%; height: 1.2rem }
#message { min-height: 1.5em; overflow-wrap: anywhere }
small { opacity: .7 }
</style>
</head>
<body>
<main>
<h1 id="heading">${heading}</h1>
<progress id="progress" max="1" aria-labelledby="heading"${value}>${percent}</progress>
<p id="message">${escape(record.progress?.message ?? '')}</p>
<p><small>This page follows the request and shows its result once it is ready. <a id="next" href="${escape(location)}">Check now</a></small></p>
</main>
<script nonce="${escape(nonces.script)}">${SCRIPT}</script>
</body>
</html>
`
}

// Polls every 2 s at first, then less often (at most every 10 s, after about 4 minutes), and
// every 10 s while the tab is hidden, at once when it shows again: the plugin stores progress at
// most once a second, and each poll is a store read (on Lambda, an invocation) per open tab. A
// poll asks `Prefer: respond-async, return=minimal`: answered at once, with the status (202) or,
// once the job is done, `200` and no result, which is read only by the navigation that follows.
// Network errors, 408, 429 and 5xx (a front end's, a rate limit's, a busy store's) are asked
// again, after their Retry-After where longer; any other answer (a 404 for a job gone, a 401
// from the app's hooks) is shown by navigating. `stop()` cancels the Refresh, a scheduled
// navigation (tested in Chromium; a browser that kept it would only show a fresh page at each
// wait, as with scripts off). This runs in the browser: the window's timers, not the plugin's clock.
const SCRIPT = `
(() => {
  const next = document.getElementById('next').href
  const bar = document.getElementById('progress')
  const heading = document.getElementById('heading')
  const headings = ${JSON.stringify(HEADINGS)}
  let polls = 0
  let timer
  const later = (ms) => {
    window.clearTimeout(timer)
    timer = window.setTimeout(poll, Math.max(ms, document.hidden ? 10000 : Math.min(10000, 2000 + polls * 200)))
  }
  let busy = false
  const poll = async () => {
    if (busy) return
    busy = true
    polls += 1
    let wait = 0
    try {
      const answer = await fetch(next, { headers: { prefer: 'respond-async, return=minimal' }, cache: 'no-store' })
      if (answer.status === 202) {
        const { status, progress } = await answer.json()
        document.title = heading.textContent = headings[status] ?? ''
        if (progress !== undefined) {
          bar.value = progress.fraction
          bar.textContent = Math.round(progress.fraction * 100) + ' %'
          document.getElementById('message').textContent = progress.message ?? ''
        }
      } else if (answer.status < 500 && answer.status !== 408 && answer.status !== 429) {
        // A download leaves this page in place: it says so rather than look stuck.
        document.title = heading.textContent = headings.done
        bar.value = 1
        return location.replace(next)
      } else {
        wait = 1000 * (Number(answer.headers.get('retry-after')) || 0)
      }
    } catch {}
    busy = false
    later(wait)
  }
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) { window.clearTimeout(timer); poll() }
  })
  addEventListener('load', () => {
    stop()
    history.replaceState(null, '', next)
    later(0)
  })
})()
`

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Text for HTML, in an element or a quoted attribute. */
function escape (value: string): string {
  return value.replace(/[&<>"']/g, character => ENTITIES[character] as string)
}
