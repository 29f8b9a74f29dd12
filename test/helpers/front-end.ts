import { once } from 'node:events'
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Test } from 'tap'

/** What the front end answers itself, as API Gateway or an ALB does on its own failures. */
export interface FrontEndAnswer {
  status: number
  headers?: Record<string, string>
  body?: string
  /**
   * `true`: the request reaches the app first, whose answer is then thrown away (API Gateway's
   * `504` after its integration timeout: the app took the request). Else the app never sees it.
   */
  afterApp?: boolean
}

/**
 * An HTTP proxy on 127.0.0.1 in front of `target`, standing for API Gateway or an ALB: it
 * forwards every request, except those for which `fault(method, url)` returns an answer of its
 * own. `answered` lists what the front end answered itself, in order.
 */
export async function startFrontEnd (t: Test, target: string, fault: (method: string, url: string) => FrontEndAnswer | undefined): Promise<{ url: string, answered: Array<{ method: string, url: string, status: number }> }> {
  const answered: Array<{ method: string, url: string, status: number }> = []
  const own = (response: ServerResponse, answer: FrontEndAnswer): void => {
    response.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers })
    response.end(answer.body ?? '{"message":"Internal server error"}')
  }
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const method = request.method ?? 'GET'
    const url = request.url ?? '/'
    const answer = fault(method, url)
    if (answer !== undefined) answered.push({ method, url, status: answer.status })
    if (answer !== undefined && answer.afterApp !== true) {
      request.resume()
      own(response, answer)
      return
    }
    const upstream = httpRequest(new URL(url, target), { method, headers: request.headers }, (reply: IncomingMessage) => {
      if (answer !== undefined) {
        reply.resume()
        own(response, answer)
        return
      }
      response.writeHead(reply.statusCode ?? 502, reply.rawHeaders)
      reply.pipe(response)
    })
    upstream.on('error', () => response.destroy())
    request.pipe(upstream)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    server.close()
    await once(server, 'close')
  })
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, answered }
}
