import { request } from 'node:http';
import { connect } from 'node:net';

/** One health check of a replica from the host: an HTTP GET answering 2xx/3xx, or a TCP connect. */
export function probe(ip: string, port: number, kind: 'http' | 'tcp', path: string | null, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(false), timeoutMs);
    let settled = false;
    const done = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(ok);
    };
    if (kind === 'tcp') {
      const s = connect({ host: ip, port }, () => {
        s.destroy();
        done(true);
      });
      s.once('error', () => done(false));
      return;
    }
    const req = request({ host: ip, port, path: path ?? '/', agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      done((res.statusCode ?? 500) < 400);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => done(false));
    req.end();
  });
}

/** Reads a number from a JSON document at a dotted path (the http-json autoscale metric). */
export async function fetchNumber(url: string, field: string | undefined, timeoutMs: number): Promise<number> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  let v: unknown = await res.json();
  for (const k of field ? field.split('.') : []) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${url}${field ? ` field ${field}` : ''} is not a number`);
  return v;
}
