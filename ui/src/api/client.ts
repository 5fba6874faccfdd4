import { authHeaders, tokenRefused } from './session';
import type { ScalePoint, ServiceEventView, ServiceView, StateTransition } from './types';

/** An API error; message is the daemon's own `{error: {message}}` when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

async function errorOf(res: Response): Promise<ApiError> {
  let code = 'http_' + res.status;
  let message = `${res.status} ${res.statusText}`.trim();
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    if (body.error?.message) message = body.error.message;
    if (body.error?.code) code = body.error.code;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(res.status, code, message);
}

/** fetch() with the token; throws ApiError on any non-2xx answer, and a 401 asks for the token again. */
export async function request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json', ...authHeaders() };
  const init: RequestInit = { method, headers };
  if (signal) init.signal = signal;
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401) tokenRefused();
  if (!res.ok) throw await errorOf(res);
  return res;
}

async function json<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await request(method, path, body);
  if (res.status === 204) return undefined as T; // no body; callers of such calls ignore the value
  return (await res.json()) as T;
}

const seg = encodeURIComponent;

export const api = {
  vmHistory: (id: string) => json<{ transitions: StateTransition[] }>('GET', `/vm/${seg(id)}/history`),
  vmAction: (id: string, action: 'stop' | 'start' | 'pause' | 'resume') => json<unknown>('POST', `/vm/${seg(id)}/${action}`),
  vmSnapshot: (id: string, name: string) => json<unknown>('POST', `/vm/${seg(id)}/snapshot`, { name }),
  vmDelete: (id: string) => json<unknown>('DELETE', `/vm/${seg(id)}?force=1`),
  vmLogs: (id: string, signal: AbortSignal) => request('GET', `/vm/${seg(id)}/logs?follow=1&tail=200`, undefined, signal),
  serviceMetrics: (name: string, sinceMs: number) =>
    json<{ points: ScalePoint[] }>('GET', `/services/${seg(name)}/metrics?since=${Math.floor(sinceMs)}`),
  serviceEvents: (name: string) => json<{ events: ServiceEventView[] }>('GET', `/services/${seg(name)}/events`),
  setReplicas: (name: string, min: number, max: number) =>
    json<ServiceView>('PATCH', `/services/${seg(name)}`, { replicas: { min, max } }),
};
