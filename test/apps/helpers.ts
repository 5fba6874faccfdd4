import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNativeCluster, type NativeCluster, type NativeClusterOptions } from '@uigniter-demo/native';
import type { TaskRecord, TaskStats } from '@uigniter-demo/common/task-record';

export interface Reply<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** A fetch that reads the whole answer and parses JSON bodies. */
export async function call<T = unknown>(url: string, init: RequestInit = {}): Promise<Reply<T>> {
  const res = await fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(20_000) });
  const text = await res.text();
  const isJson = (res.headers.get('content-type') ?? '').includes('application/json');
  return { status: res.status, headers: res.headers, text, body: (isJson ? JSON.parse(text) : text) as T };
}

export function postJson<T = unknown>(url: string, body: unknown): Promise<Reply<T>> {
  return call<T>(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

export async function getBytes(url: string): Promise<{ status: number; headers: Headers; bytes: Buffer }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(20_000) });
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}

export interface ErrorReply {
  error: { code: string; message: string; field?: string };
}

/** Uploads `data` as the file field `field` of a multipart form. */
export function uploadFile(
  masterUrl: string,
  data: Buffer,
  field = 'image',
  filename = 'upload.png',
  type = 'image/png',
): Promise<Reply<{ id: number; state: string } & Partial<ErrorReply>>> {
  const form = new FormData();
  form.append(field, new Blob([data], { type }), filename);
  return call(`${masterUrl}/task`, { method: 'POST', body: form });
}

/** Polls `probe` until it returns something other than undefined/false. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export async function getTask(dbUrl: string, id: number): Promise<TaskRecord> {
  const reply = await call<TaskRecord>(`${dbUrl}/task/${id}`);
  if (reply.status !== 200) throw new Error(`GET task ${id}: ${reply.status} ${reply.text}`);
  return reply.body;
}

export async function getStats(url: string): Promise<TaskStats> {
  return (await call<TaskStats>(`${url}/stats`)).body;
}

export async function listObjects(storageUrl: string): Promise<string[]> {
  return (await call<{ objects: string[] }>(`${storageUrl}/object`)).body.objects;
}

/** Anything that runs clean-up functions at the end: a TestContext or a Cleanup. */
export interface Teardown {
  after(fn: () => Promise<void> | void): void;
}

/**
 * Clean-up for a whole describe() block: register `after(() => cleanup.run())`
 * in the block, then hand `cleanup` to helpers called from `before`.
 */
export class Cleanup implements Teardown {
  private readonly steps: Array<() => Promise<void> | void> = [];
  after(fn: () => Promise<void> | void): void {
    this.steps.push(fn);
  }
  async run(): Promise<void> {
    for (const step of this.steps.reverse()) await step();
  }
}

/** A temp dir removed when the test (or suite) ends, pass or fail. */
export async function tempDir(t: Teardown, prefix = 'uigniter-apps-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Starts a native cluster torn down when the test ends; on failure the tail
 * of every service's output is printed so the cause is visible.
 */
export async function cluster(
  t: Teardown,
  options: Omit<NativeClusterOptions, 'dataDir'> & { dataDir?: string },
): Promise<NativeCluster> {
  const dataDir = options.dataDir ?? (await tempDir(t));
  const started = await startNativeCluster({ workers: 0, ...options, dataDir });
  t.after(async () => {
    await started.stop();
  });
  return started;
}

/** Service output, for assertion messages. */
export function logsOf(c: NativeCluster): string {
  return c.services().map((s) => s.tail(40)).join('\n');
}
