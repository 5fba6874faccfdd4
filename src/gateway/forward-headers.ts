import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';

/**
 * Headers of one connection, not of the message (RFC 9110 7.6.1): never forwarded. `host`
 * is set by the client to the replica's origin (the original is in x-forwarded-host);
 * `expect` is answered by the gateway's own server (100-continue), and undici refuses it.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const NOT_FORWARDED_UP = new Set([...HOP_BY_HOP, 'host', 'expect']);

/** Header names the sender listed in its Connection header: hop-by-hop as well. */
function connectionTokens(value: string | string[] | undefined): Set<string> {
  const tokens = new Set<string>();
  for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) {
    for (const t of v.split(',')) if (t.trim()) tokens.add(t.trim().toLowerCase());
  }
  return tokens;
}

/** The headers sent to the replica: the client's, minus hop-by-hop ones, plus x-forwarded-*. */
export function upstreamHeaders(req: IncomingMessage): Record<string, string | string[]> {
  const listed = connectionTokens(req.headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const [name, values] of Object.entries(req.headersDistinct)) {
    if (values === undefined || NOT_FORWARDED_UP.has(name) || listed.has(name)) continue;
    // undici takes content-length only as one string; a repeated one never reaches here (Node refuses it).
    out[name] = values.length === 1 ? values[0]! : values;
  }
  const client = req.socket.remoteAddress;
  if (client !== undefined) {
    const before = req.headers['x-forwarded-for'];
    out['x-forwarded-for'] = before ? `${before}, ${client}` : client;
  }
  const host = req.headers['x-forwarded-host'] ?? req.headers.host;
  if (host !== undefined) out['x-forwarded-host'] = host;
  out['x-forwarded-proto'] = req.headers['x-forwarded-proto'] ?? 'http';
  return out;
}

/** The headers sent back to the client: the replica's, minus hop-by-hop ones, plus who answered. */
export function downstreamHeaders(headers: IncomingHttpHeaders, vmId: string): OutgoingHttpHeaders {
  const listed = connectionTokens(headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name)) continue;
    out[name] = value;
  }
  out['x-uigniter-replica'] = vmId;
  return out;
}
