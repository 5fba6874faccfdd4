import { request } from 'node:http';
import { connect } from 'node:net';

/** One request the fuzzer sends, printable as a counterexample. */
export interface FuzzRequest {
  method: string;
  /** Path and query, sent as is (it may be a malformed URL on purpose). */
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** Sent as this many bytes of `body` repeated (huge bodies are not kept in the counterexample). */
  repeatTo?: number;
  /** Sent in chunks with no content-length. */
  chunked?: boolean;
  /** A streaming answer (logs?follow=1): only its status and headers are read. */
  streaming?: boolean;
  /** What the generator meant: a request the daemon must refuse, or one it may accept. */
  intent: 'invalid' | 'any';
  /**
   * A create that may be accepted: then this DELETE (its {field}s filled from the answer)
   * must succeed and leave the state exactly as it was before the create.
   */
  roundtrip?: string;
  label: string;
}

export interface Answer {
  status: number;
  contentType: string;
  body: string;
}

/** Sends one request with node:http (full control over method, path and headers); rejects on a timeout. */
export function send(base: { host: string; port: number }, r: FuzzRequest, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let payload: Buffer | undefined;
    if (r.body !== undefined) {
      const one = Buffer.from(r.body);
      if (r.repeatTo !== undefined && one.length > 0) {
        payload = Buffer.alloc(r.repeatTo);
        for (let i = 0; i < r.repeatTo; i += one.length) one.copy(payload, i);
      } else payload = one;
    }
    const headers: Record<string, string> = { ...r.headers };
    if (payload && !r.chunked) headers['content-length'] = String(payload.length);
    // Node frames a body as chunks by itself only for methods that usually carry one; for
    // GET, HEAD or DELETE it would write the bytes unframed, which the daemon rightly reads
    // as a second, malformed request (and the client then chokes on two answers).
    if (payload && r.chunked) headers['transfer-encoding'] = 'chunked';
    let done = false;
    const finish = (f: () => void): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      f();
    };
    const req = request({ host: base.host, port: base.port, method: r.method, path: r.path, headers, agent: false }, (res) => {
      const contentType = String(res.headers['content-type'] ?? '');
      if (r.streaming && res.statusCode === 200) {
        finish(() => resolve({ status: 200, contentType, body: '' }));
        res.destroy();
        req.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => finish(() => resolve({ status: res.statusCode ?? 0, contentType, body: Buffer.concat(chunks).toString('utf8') })));
      res.on('error', (e) => finish(() => reject(e)));
    });
    const timer = setTimeout(() => {
      finish(() => reject(new Error(`no answer within ${timeoutMs} ms (hang)`)));
      req.destroy();
    }, timeoutMs);
    req.on('error', (e) => finish(() => reject(e)));
    if (payload && r.chunked) {
      for (let i = 0; i < payload.length; i += 16 * 1024) req.write(payload.subarray(i, i + 16 * 1024));
      req.end();
    } else req.end(payload);
  });
}

/** Sends bytes on a raw TCP connection and returns the status line's code and the body (malformed HTTP). */
export function sendRaw(base: { host: string; port: number }, bytes: string, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const sock = connect(base.port, base.host);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms (hang)`));
    }, timeoutMs);
    sock.on('connect', () => sock.write(bytes));
    sock.on('data', (c: Buffer) => (buf += c.toString('utf8')));
    const end = (): void => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf);
      if (!m) return reject(new Error(`no HTTP answer: ${JSON.stringify(buf.slice(0, 200))}`));
      const [head, ...rest] = buf.split('\r\n\r\n');
      const ct = /content-type: *([^\r\n]*)/i.exec(head ?? '')?.[1] ?? '';
      let body = rest.join('\r\n\r\n');
      if (/transfer-encoding: *chunked/i.test(head ?? '')) body = body.replace(/^[0-9a-f]+\r\n/i, '').replace(/\r\n0\r\n\r\n$/, '');
      resolve({ status: Number(m[1]), contentType: ct, body });
    };
    sock.on('end', end);
    sock.on('close', () => {
      if (!sock.destroyed || buf) end();
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      if (buf) end();
      else reject(e);
    });
  });
}
