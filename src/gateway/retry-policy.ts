import type { IncomingMessage } from 'node:http';

/**
 * Which requests may be sent again to another replica. The gateway streams bodies and never
 * buffers them, so a request that carries a body is sent once, whatever its method: replaying
 * it would need the body kept. Retried: GET, HEAD, OPTIONS, PUT and DELETE without a body
 * (no content-length or 0, no transfer-encoding), the methods RFC 9110 9.2.2 calls idempotent.
 */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

/** Whether the request carries a body (framed by transfer-encoding or a non-zero content-length). */
export function hasBody(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && Number(length) !== 0;
}

export function isReplayable(req: IncomingMessage): boolean {
  return IDEMPOTENT.has(req.method ?? '') && !hasBody(req);
}

/**
 * Failures that happened before the replica started a response: it refused or reset the
 * connection, closed it under the request, could not be reached, or its pool was closed
 * because it left the ready set. A replica that is slow to answer (headers timeout) is not
 * one: it may be working on the request.
 */
const CONNECTION_FAILURES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ENOTCONN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
]);

export function isConnectionFailure(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== undefined && CONNECTION_FAILURES.has(code)) return true;
  }
  return false;
}
