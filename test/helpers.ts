import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
export { freePort } from '../src/util/net.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
export const FIXTURES = join(ROOT, 'test', 'fixtures');
/** Kernel and initrd builds are shared by every test home (building a kernel takes minutes). */
export const SHARED_CACHE = process.env.UIGNITER_CACHE ?? '/var/lib/uigniter/cache';

export async function tempHome(prefix = 'uigniter-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function cliEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, UIGNITER_HOME: home, UIGNITER_CACHE: SHARED_CACHE, ...extra };
}

/** Runs the built CLI to completion. */
export function cli(home: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv(home, opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts the CLI and returns the child with its output collected as it comes. */
export function cliSpawn(home: string, args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; out: () => string; err: () => string; done: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv(home, env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, out: () => stdout, err: () => stderr, done };
}

/** QEMU processes whose command line mentions `needle` (a home directory, a VM id). */
export async function qemuProcesses(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmd = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes('qemu-system') && cmd.includes(needle)) pids.push(Number(entry));
  }
  return pids;
}

/** Children of `ppid` whose command line contains `needle`. */
export async function childrenWith(ppid: number, needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const status = await readFile(`/proc/${entry}/status`, 'utf8').catch(() => '');
    if (Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]) !== ppid) continue;
    const cmd = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(needle)) pids.push(Number(entry));
  }
  return pids;
}

/** Every file under dir, relative, sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(join(d, e.name), r);
      else out.push(r);
    }
  };
  await walk(dir, '');
  return out.sort();
}

export async function waitFor<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs: number, what: string, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
}

export async function httpGet(url: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text() };
}

export async function removeHome(home: string): Promise<void> {
  await rm(home, { recursive: true, force: true });
}


/** A static-binary app (busybox) running `sh -c script`: boots in about a second, no runtime layer. */
export async function makeShellApp(script: string, extra: Record<string, unknown> = {}): Promise<string> {
  const { chmod, copyFile, mkdtemp: mk, writeFile } = await import('node:fs/promises');
  const dir = await mk(join(tmpdir(), 'uigniter-shell-app-'));
  await copyFile('/bin/busybox', join(dir, 'busybox'));
  await chmod(join(dir, 'busybox'), 0o755);
  await writeFile(join(dir, 'uigniter.json'), JSON.stringify({ entry: 'busybox', args: ['sh', '-c', script], ...extra }));
  return dir;
}

/** One message of a server-sent event stream. */
export interface StreamEvent {
  event: string;
  data: unknown;
}

/**
 * Reads a server-sent event stream (the daemon's GET /events) until `until` returns a
 * value for one of its messages, and returns that value; fails after `timeoutMs`.
 */
export async function awaitEvent<T>(url: string, until: (e: StreamEvent) => T | null | undefined, timeoutMs = 30_000, headers: Record<string, string> = {}): Promise<T> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error(`no matching event from ${url} within ${timeoutMs} ms`)), timeoutMs);
  try {
    const res = await fetch(url, { headers, signal: abort.signal });
    if (!res.ok || !res.body) throw new Error(`${url}: HTTP ${res.status}`);
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event === undefined || data === undefined) continue;
        const found = until({ event, data: JSON.parse(data) as unknown });
        if (found !== null && found !== undefined) return found;
      }
    }
    throw new Error(`${url}: the stream ended before a matching event`);
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}
