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
  if (!isAsyncAnswer(response)) return undefined
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

/** A result the plugin kept in S3, as it describes it to `Prefer: respond-async`. */
export interface DescribedResult {
  /** The route's status and headers (but `set-cookie`). */
  statusCode: number
  headers: Record<string, string | string[]>
  /** The presigned URL of the body, as the server wrote it. */
  location: string
  /** The route's cookies, sent as the description's own `Set-Cookie` (readable in Node only). */
  cookies: string[]
}

/**
 * The plugin's description of a result whose body is in S3: a `202` with
 * `Preference-Applied: respond-async` and `{ status: 'done', statusCode, headers, location }`.
 */
export async function describedResultOf (response: Response): Promise<DescribedResult | undefined> {
  if (!isAsyncAnswer(response)) return undefined
  const body = await jsonOf(response) as Record<string, unknown> | null | undefined
  if (typeof body !== 'object' || body === null || body.status !== 'done') return undefined
  const { statusCode, headers, location } = body
  if (!Number.isInteger(statusCode) || typeof location !== 'string' || !isHeaders(headers)) return undefined
  await response.body?.cancel()
  // Every browser with `AbortSignal.any` has `getSetCookie`; it lists none there (a page never reads cookies).
  return { statusCode: statusCode as number, headers, location, cookies: response.headers.getSetCookie() }
}

/**
 * Whether the plugin gave this answer: it names the preferences it applied in every answer to
 * the client's `Prefer: respond-async, wait=N` (its 202s `respond-async`, the rest `wait`), and a
 * front end's own errors (API Gateway, ALB) name none. From a page of another origin it sees it
 * only when the API's CORS exposes `Preference-Applied`.
 */
export function isPluginAnswer (response: Response): boolean {
  return appliedOf(response).some(name => name === 'wait' || name === 'respond-async')
}

/**
 * `Preference-Applied: respond-async` marks the plugin's 202 from a route's own, however
 * status-like the route's body (a route's own 202 through the plugin names only `wait`).
 */
function isAsyncAnswer (response: Response): boolean {
  return response.status === 202 && appliedOf(response).includes('respond-async')
}

/** The names of the preferences `Preference-Applied` lists, lower case. */
function appliedOf (response: Response): string[] {
  return (response.headers.get('preference-applied') ?? '').split(',').map(item => item.replace(/=.*$/s, '').trim().toLowerCase())
}

function isHeaders (value: unknown): value is Record<string, string | string[]> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) &&
    Object.values(value).every(item => typeof item === 'string' || (Array.isArray(item) && item.every(part => typeof part === 'string')))
}

/**
 * A route with `idempotency: { strict: true }` answers a retry while its job runs with 409
 * `FST_LONG_RUNNING_IDEMPOTENCY_CONFLICT`, `Idempotent-Replayed` and the job's `Location`: for
 * the client, a status. The app's error handler may reshape the body, not those headers.
 */
export async function conflictOf (response: Response): Promise<LongRunningProgress | undefined> {
  const location = response.headers.get('location')
  if (response.status !== 409 || location === null) return undefined
  const body = await jsonOf(response)
  const coded = (body as { code?: unknown } | null | undefined)?.code === 'FST_LONG_RUNNING_IDEMPOTENCY_CONFLICT'
  if (!coded && response.headers.get('idempotent-replayed') !== 'true') return undefined
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
