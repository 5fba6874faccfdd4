import type { ServerResponse } from 'node:http';

/** Answers that the gateway makes itself, in the API's error shape: `{error: {code, message}}`. */
export type GatewayReplyCode = 'bad_gateway' | 'unavailable';

const STATUS: Record<GatewayReplyCode, number> = { bad_gateway: 502, unavailable: 503 };

/**
 * A client told to come back: a replica that is starting is usually ready within a second
 * or two (a clone restores in about 0.25 s, a cold boot takes longer).
 */
const RETRY_AFTER_S = 1;

export function replyError(res: ServerResponse, code: GatewayReplyCode, message: string, opts: { closeConnection?: boolean } = {}): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: { code, message } });
  const headers: Record<string, string | number> = { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) };
  if (code === 'unavailable') headers['retry-after'] = RETRY_AFTER_S;
  if (opts.closeConnection) headers.connection = 'close';
  res.writeHead(STATUS[code], headers);
  res.end(body);
}
