import type { FastifyReply, FastifyRequest } from 'fastify'

/**
 * A stored result's cookies meet the cookies of the request that fetches it: that request runs
 * the app's hooks too, and a session plugin there (`@fastify/session` with `rolling`, say) sets
 * the session cookie again, as it was before the job changed it. The route, run as the job, gave
 * the cookie its new value (a login, a cart): for each cookie it set, its `Set-Cookie` is the one
 * that goes out, as it would synchronously, and the fetching request's for the same cookie is
 * dropped. The fetching request's other cookies go out too.
 */

const kStoredCookies = Symbol('fastify-long-running.stored-cookies')

type CookieReply = FastifyReply & { [kStoredCookies]?: readonly string[] }

/** Sets a stored result's `Set-Cookie` on the reply, remembered as the route's own for {@link keepRouteCookies}. */
export function setStoredCookies (reply: FastifyReply, cookies: string | string[] | undefined): void {
  if (cookies === undefined) return
  const stored = [cookies].flat()
  const marked: CookieReply = reply
  marked[kStoredCookies] = stored
  reply.header('set-cookie', stored)
}

/** An `onSend` hook of the plugin's routes, after the app's own: one `Set-Cookie` per cookie the route set. */
export async function keepRouteCookies (_request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
  const stored = (reply as CookieReply)[kStoredCookies]
  if (stored === undefined) return payload
  const own = new Set(stored.map(identity))
  const pending = [...stored]
  const all = [reply.getHeader('set-cookie') ?? []].flat().map(String)
  const kept = all.filter(cookie => {
    if (!own.has(identity(cookie))) return true
    // The stored ones, once each (the fetching request may have set the very same line).
    const index = pending.indexOf(cookie)
    if (index !== -1) pending.splice(index, 1)
    return index !== -1
  })
  if (kept.length !== all.length) reply.removeHeader('set-cookie').header('set-cookie', kept)
  return payload
}

/**
 * What a browser keys a cookie by (RFC 6265 §5.3): its name, `Domain` and `Path`. A cookie
 * without `Path` has the request's directory for one; both answers here come from the same
 * app, and an absent attribute is compared as absent.
 */
function identity (setCookie: string): string {
  const [pair = '', ...attributes] = setCookie.split(';')
  const name = pair.slice(0, Math.max(pair.indexOf('='), 0)).trim()
  const attribute = (wanted: string): string => {
    const found = attributes.map(part => part.split('=')).find(([key]) => key?.trim().toLowerCase() === wanted)
    return found?.slice(1).join('=').trim() ?? ''
  }
  return JSON.stringify([name, attribute('domain').toLowerCase().replace(/^\./, ''), attribute('path')])
}

/** A server-side session, as express-session and `@fastify/session` shape it. */
interface ServerSession { sessionId?: unknown, reload?: unknown }
interface SessionStore { get?: (id: string, callback: (error: unknown, session?: unknown) => void) => void }

/**
 * A server-side session (`@fastify/session`, and any with express-session's `reload`) that a
 * request of the plugin's (the one that queued the job, or one that waits for it) loaded before
 * the job wrote to it: read again before it answers, so that its `onSend` (with `rolling`, on
 * every answer) saves what the job left, not the copy it read before the job ran.
 * A session the job destroyed (a logout) is dropped from the request, as `destroy()` does: saving
 * it again would bring its id back to life. One that cannot be read is left as it is.
 */
export async function reloadSession (request: FastifyRequest): Promise<void> {
  const holder = request as unknown as { session?: ServerSession | null, sessionStore?: SessionStore }
  const session = holder.session
  if (typeof session?.reload !== 'function') return
  try {
    const store = holder.sessionStore
    if (typeof store?.get === 'function' && typeof session.sessionId === 'string') {
      const get = store.get.bind(store)
      const id = session.sessionId
      const kept = await new Promise((resolve, reject) => get(id, (error, found) => error === null || error === undefined ? resolve(found) : reject(error)))
      if (kept === undefined || kept === null) {
        holder.session = null
        return
      }
    }
    await (session.reload as () => Promise<void>).call(session)
  } catch (error) {
    request.log.warn({ err: error }, 'reading the session again before handing over a job\'s result failed')
  }
}
