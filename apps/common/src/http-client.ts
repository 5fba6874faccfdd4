import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import type { ErrorBody } from './http-error.js';

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string | number>;
  body?: Buffer | string;
  /** Socket inactivity timeout; a stuck peer must not stall a worker forever. */
  timeoutMs?: number;
  signal?: AbortSignal;
  maxResponseBytes?: number;
}

/** The request never produced a response: refused, reset, timed out. Worth retrying. */
export class NetworkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NetworkError';
  }
}

/** A response with a status the caller did not expect, with the service's error code. */
export class HttpStatusError extends Error {
  readonly code: string;
  constructor(
    readonly status: number,
    readonly response: HttpResponse,
    context: string,
  ) {
    const parsed = parseErrorBody(response.body);
    super(`${context}: HTTP ${status}${parsed ? ` ${parsed.code}: ${parsed.message}` : ''}`);
    this.name = 'HttpStatusError';
    this.code = parsed?.code ?? `http_${status}`;
  }
}

function parseErrorBody(body: Buffer): ErrorBody['error'] | undefined {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as Partial<ErrorBody>;
    const error = parsed.error;
    if (error && typeof error.code === 'string' && typeof error.message === 'string') return error;
  } catch {
    // Not a JSON error body (e.g. a proxy's HTML page): the status alone has to do.
  }
  return undefined;
}

/** True for failures that another attempt may not hit: no answer, 5xx, 408, 429. */
export function isTransient(err: unknown): boolean {
  if (err instanceof NetworkError) return true;
  if (err instanceof HttpStatusError) {
    return err.status >= 500 || err.status === 408 || err.status === 429;
  }
  return false;
}

const agent = new Agent({ keepAlive: true, maxSockets: 32 });

/** A buffered HTTP request on a shared keep-alive agent. */
export function httpRequest(url: string, options: RequestOptions = {}): Promise<HttpResponse> {
  const { method = 'GET', body, timeoutMs = 10_000, signal, maxResponseBytes = 64 * 1024 * 1024 } = options;
  const headers: Record<string, string | number> = { ...options.headers };
  if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const req = request(url, { method, headers, agent, signal });
    req.setTimeout(timeoutMs, () => {
      req.destroy(new NetworkError(`${method} ${url}: no activity for ${timeoutMs} ms`));
    });
    req.on('error', (err) => {
      if (signal?.aborted) reject(signal.reason);
      else if (err instanceof NetworkError) reject(err);
      else reject(new NetworkError(`${method} ${url}: ${err.message}`, { cause: err }));
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxResponseBytes) {
          req.destroy(new NetworkError(`${method} ${url}: response exceeds ${maxResponseBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks, size) });
      });
      res.on('error', (err) => req.destroy(err));
    });
    req.end(body);
  });
}

/** Parses a JSON response body, failing loudly if the service sent something else. */
export function jsonBody<T>(response: HttpResponse): T {
  return JSON.parse(response.body.toString('utf8')) as T;
}
