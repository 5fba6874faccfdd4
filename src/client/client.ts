import { Agent, request, type Dispatcher } from 'undici';
import type { ErrorCode } from '../core/errors.js';
import type { ImageView, PoolView, RunBody, ScalePointView, ServiceBody, ServiceEventView, ServiceView, SnapshotView, VmStatsView, VmView, VolumeView } from '../api/schemas.js';

export type { ImageView, PoolView, RunBody, ScalePointView, ServiceBody, ServiceEventView, ServiceView, SnapshotView, VmStatsView, VmView, VolumeView };

/** An error answer of the API, with its code, HTTP status and the field at fault. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const DEFAULT_HOST = 'http://127.0.0.1:6666';

/**
 * The typed client of the daemon's API, used by the CLI, tests and apps. `host` is an
 * http(s) URL or `unix:/path/to.sock`.
 */
export class UigniterClient {
  private readonly origin: string;
  private readonly dispatcher: Dispatcher | undefined;

  constructor(
    host: string = process.env.UIGNITER_HOST ?? DEFAULT_HOST,
    private readonly token: string | undefined = process.env.UIGNITER_TOKEN,
  ) {
    if (host.startsWith('unix:')) {
      this.origin = 'http://localhost';
      this.dispatcher = new Agent({ connect: { socketPath: host.slice(5) } });
    } else {
      this.origin = host.replace(/\/+$/, '');
      this.dispatcher = undefined;
    }
  }

  private async call<T>(method: Dispatcher.HttpMethod, path: string, body?: unknown): Promise<T> {
    let res: Dispatcher.ResponseData;
    try {
      res = await request(`${this.origin}${path}`, {
        method,
        ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (e) {
      throw new ApiError(0, 'unavailable', `cannot reach the uigniter daemon at ${this.origin}: ${(e as Error).message} (start it with 'uigniter daemon')`);
    }
    const text = await res.body.text();
    if (res.statusCode >= 400) {
      let err: { code?: ErrorCode; message?: string; field?: string } = {};
      try {
        err = (JSON.parse(text) as { error?: typeof err }).error ?? {};
      } catch {
        /* not JSON */
      }
      throw new ApiError(res.statusCode, err.code ?? 'internal', err.message ?? `HTTP ${res.statusCode}`, err.field);
    }
    if (res.statusCode === 204 || text === '') return undefined as T;
    const type = String(res.headers['content-type'] ?? '');
    return (type.includes('json') ? JSON.parse(text) : text) as T;
  }

  health(): Promise<{ status: 'ok'; version: string; vms: number; ui: string | null; auth: boolean }> {
    return this.call('GET', '/healthz');
  }

  run(body: RunBody, wait: 'ready' | 'launched' = 'ready'): Promise<VmView> {
    return this.call('POST', `/vm/run${wait === 'ready' ? '' : `?wait=${wait}`}`, body);
  }

  start(ref: string, wait: 'ready' | 'launched' = 'ready'): Promise<VmView> {
    return this.call('POST', `/vm/${encodeURIComponent(ref)}/start${wait === 'ready' ? '' : `?wait=${wait}`}`);
  }

  stop(ref: string, timeoutSec?: number, opts: { suspend?: boolean } = {}): Promise<VmView> {
    const q = new URLSearchParams();
    if (timeoutSec !== undefined) q.set('timeout', String(timeoutSec));
    if (opts.suspend) q.set('suspend', '1');
    return this.call('POST', `/vm/${encodeURIComponent(ref)}/stop${q.size ? `?${q}` : ''}`);
  }

  /** Saves memory; the next start resumes where it was. */
  suspend(ref: string): Promise<VmView> {
    return this.stop(ref, undefined, { suspend: true });
  }

  pause(ref: string): Promise<VmView> {
    return this.call('POST', `/vm/${encodeURIComponent(ref)}/pause`);
  }

  resume(ref: string): Promise<VmView> {
    return this.call('POST', `/vm/${encodeURIComponent(ref)}/resume`);
  }

  snapshot(ref: string, name: string): Promise<SnapshotView> {
    return this.call('POST', `/vm/${encodeURIComponent(ref)}/snapshot`, { name });
  }

  async snapshots(): Promise<SnapshotView[]> {
    return (await this.call<{ snapshots: SnapshotView[] }>('GET', '/snapshots')).snapshots;
  }

  getSnapshot(name: string): Promise<SnapshotView> {
    return this.call('GET', `/snapshots/${encodeURIComponent(name)}`);
  }

  removeSnapshot(name: string): Promise<void> {
    return this.call('DELETE', `/snapshots/${encodeURIComponent(name)}`);
  }

  async templates(): Promise<SnapshotView[]> {
    return (await this.call<{ templates: SnapshotView[] }>('GET', '/templates')).templates;
  }

  removeTemplate(name: string): Promise<void> {
    return this.call('DELETE', `/templates/${encodeURIComponent(name)}`);
  }

  remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const q = new URLSearchParams();
    if (opts.force) q.set('force', '1');
    if (opts.volumes) q.set('volumes', '1');
    return this.call('DELETE', `/vm/${encodeURIComponent(ref)}${q.size ? `?${q}` : ''}`);
  }

  async list(): Promise<VmView[]> {
    return (await this.call<{ vms: VmView[] }>('GET', '/vm')).vms;
  }

  get(ref: string): Promise<VmView> {
    return this.call('GET', `/vm/${encodeURIComponent(ref)}`);
  }

  /** What the VM's VMM holds and burns, and its translation cache (409 when it does not run). */
  stats(ref: string): Promise<VmStatsView> {
    return this.call('GET', `/vm/${encodeURIComponent(ref)}/stats`);
  }

  logs(ref: string, tail?: number): Promise<string> {
    return this.call('GET', `/vm/${encodeURIComponent(ref)}/logs${tail === undefined ? '' : `?tail=${tail}`}`);
  }

  /** Streams the console until the VM stops or the signal aborts. */
  async followLogs(ref: string, onChunk: (s: string) => void, signal?: AbortSignal): Promise<void> {
    const res = await request(`${this.origin}/vm/${encodeURIComponent(ref)}/logs?follow=1`, {
      ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
      headers: this.token ? { authorization: `Bearer ${this.token}` } : {},
      ...(signal ? { signal } : {}),
    });
    if (res.statusCode >= 400) {
      const err = (JSON.parse(await res.body.text()) as { error: { code: ErrorCode; message: string } }).error;
      throw new ApiError(res.statusCode, err.code, err.message);
    }
    for await (const chunk of res.body) onChunk((chunk as Buffer).toString());
  }

  async images(): Promise<ImageView[]> {
    return (await this.call<{ images: ImageView[] }>('GET', '/images')).images;
  }

  buildImage(path: string, name: string): Promise<ImageView> {
    return this.call('POST', '/images', { path, name });
  }

  removeImage(name: string): Promise<void> {
    return this.call('DELETE', `/images/${encodeURIComponent(name)}`);
  }

  async volumes(): Promise<VolumeView[]> {
    return (await this.call<{ volumes: VolumeView[] }>('GET', '/volumes')).volumes;
  }

  removeVolume(name: string): Promise<void> {
    return this.call('DELETE', `/volumes/${encodeURIComponent(name)}`);
  }

  createPool(body: { image: string; size: number; vcpus?: number; memMiB?: number; env?: Record<string, string>; args?: string[] | null; warm?: { path?: string; requests?: number } }): Promise<PoolView> {
    return this.call('POST', '/pools', body);
  }

  async pools(): Promise<PoolView[]> {
    return (await this.call<{ pools: PoolView[] }>('GET', '/pools')).pools;
  }

  getPool(id: string): Promise<PoolView> {
    return this.call('GET', `/pools/${encodeURIComponent(id)}`);
  }

  removePool(id: string): Promise<void> {
    return this.call('DELETE', `/pools/${encodeURIComponent(id)}`);
  }

  createService(body: ServiceBody): Promise<ServiceView> {
    return this.call('POST', '/services', body);
  }

  async services(): Promise<ServiceView[]> {
    return (await this.call<{ services: ServiceView[] }>('GET', '/services')).services;
  }

  getService(name: string): Promise<ServiceView> {
    return this.call('GET', `/services/${encodeURIComponent(name)}`);
  }

  updateService(name: string, patch: { replicas?: { min?: number; max?: number }; desired?: number }): Promise<ServiceView> {
    return this.call('PATCH', `/services/${encodeURIComponent(name)}`, patch);
  }

  removeService(name: string): Promise<void> {
    return this.call('DELETE', `/services/${encodeURIComponent(name)}`);
  }

  /** Any call, for scripts and tests that need the raw answer. */
  raw<T>(method: Dispatcher.HttpMethod, path: string, body?: unknown): Promise<T> {
    return this.call(method, path, body);
  }

  async close(): Promise<void> {
    await this.dispatcher?.close();
  }
}
