/** The plugin's `202` status answers, as the client reads them. */

/** What a job reported in its latest `202` status body. */
export interface LongRunningProgress {
  /** `pending` until a worker starts it, then `running`. */
  status: 'pending' | 'running'
  /** `0..1`, as the route reported it with `request.longRunning.progress()`; absent until then. */
  fraction?: number
  message?: string
  /** The job's id, and the absolute URL of its status and result. */
  id: string
  location: string
}

/**
 * The job's status if `response` is the plugin's `202` (it keeps the body readable otherwise).
 * `location` is as the server wrote it: the caller resolves it against the response's URL.
 */
export async function statusOf (response: Response): Promise<LongRunningProgress | undefined> {
  if (response.status !== 202) return undefined
  // `Preference-Applied: respond-async` marks the plugin's 202 from a route's own, however
  // status-like the route's body: a page of another origin sees it when the API's CORS exposes it.
  if (!/(^|,)\s*respond-async\s*(,|$)/i.test(response.headers.get('preference-applied') ?? '')) return undefined
  const body = await jsonOf(response)
  if (!isStatusBody(body)) return undefined
  await response.body?.cancel()
  const status: LongRunningProgress = { status: body.status, id: body.id, location: body.location }
  if (body.progress !== undefined) {
    status.fraction = body.progress.fraction
    if (body.progress.message !== undefined) status.message = body.progress.message
  }
  return status
}

/**
 * A route with `idempotency: { strict: true }` answers a retry while its job runs with 409
 * `FST_LONG_RUNNING_IDEMPOTENCY_CONFLICT` and the job's `Location`: for the client, a status.
 */
export async function conflictOf (response: Response): Promise<LongRunningProgress | undefined> {
  const location = response.headers.get('location')
  if (response.status !== 409 || location === null) return undefined
  const body = await jsonOf(response)
  if ((body as { code?: unknown } | null | undefined)?.code !== 'FST_LONG_RUNNING_IDEMPOTENCY_CONFLICT') return undefined
  await response.body?.cancel()
  return { status: 'running', id: /\/async-response\/([^/?]+)/.exec(location)?.[1] ?? '', location }
}

/** The body of `response` parsed as JSON, read from a clone (the response stays readable); `undefined` if it is not JSON. */
async function jsonOf (response: Response): Promise<unknown> {
  try {
    return await response.clone().json()
  } catch {
    return undefined
  }
}

interface StatusBody { id: string, status: 'pending' | 'running', location: string, progress?: { fraction: number, message?: string } }

function isStatusBody (body: unknown): body is StatusBody {
  if (typeof body !== 'object' || body === null) return false
  const { id, status, location, progress } = body as Record<string, unknown>
  return typeof id === 'string' && (status === 'pending' || status === 'running') && typeof location === 'string' &&
    (progress === undefined || (typeof progress === 'object' && progress !== null && typeof (progress as { fraction?: unknown }).fraction === 'number'))
}
