import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile as readFileAsync, rm } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { UigniterClient } from '../src/client/client.js';
import { run } from '../src/util/exec.js';
import { freePort } from '../src/util/net.js';
import { Paths } from '../src/util/paths.js';
export { freePort };

/** Shared by the benchmarks: a daemon of their own, statistics and a table printer. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
export const CACHE = process.env.UIGNITER_CACHE ?? '/var/lib/uigniter/cache';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

export function printTable(headers: string[], rows: (string | number)[][]): void {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  for (const [k, r] of cells.entries()) {
    process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ')}\n`);
    if (k === 0) process.stdout.write(`${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  }
}


export interface BenchDaemon {
  home: string;
  netns: string;
  bridge: string;
  client: UigniterClient;
  url: string;
  child: ChildProcess;
  cli(args: string[]): Promise<string>;
  close(): Promise<void>;
}

/** A daemon in its own process, home, namespace and subnet, removed afterwards. */
export async function startBenchDaemon(extraArgs: string[] = []): Promise<BenchDaemon> {
  const home = await mkdtemp(join(tmpdir(), 'uigniter-bench-'));
  const port = await freePort();
  const tag = process.pid % 1000;
  const netns = `uigb-${process.pid}`;
  const bridge = `ubb${tag}`;
  const net = ['--netns', netns, '--bridge', bridge, '--subnet', '172.27.0.0/22', '--link-net', '172.26.255.252/30'];
  const env = { ...process.env, UIGNITER_HOME: home, UIGNITER_CACHE: CACHE };
  const child = spawn(process.execPath, [CLI, 'daemon', '--port', String(port), '--ui-port', '0', ...net, ...extraArgs], {
    env: { ...env, UIGNITER_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error('the daemon exited at start');
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      /* not yet */
    }
    if (i > 300) throw new Error('the daemon did not start');
    await sleep(100);
  }
  const cli = async (args: string[]): Promise<string> => (await run(process.execPath, [CLI, ...args], { env })).stdout;
  // A benchmark stopped by a signal still removes its daemon, VMs, namespace and home.
  const onSignal = (sig: NodeJS.Signals): void => {
    process.stderr.write(`${sig}: removing the bench daemon and its VMs\n`);
    void bench.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const bench: BenchDaemon = {
    home,
    netns,
    bridge,
    client: new UigniterClient(url),
    url,
    child,
    cli,
    async close() {
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
      await cli(['daemon', '--cleanup', ...net]).catch(() => '');
      await rm(home, { recursive: true, force: true });
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
  return bench;
}

export function processRssMiB(pid: number): Promise<number> {
  return import('node:fs/promises').then(async ({ readFile }) => {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
  });
}

/** min, median, p99 and max of a sample (same unit as the sample). */
export interface Spread {
  n: number;
  min: number;
  p50: number;
  p99: number;
  max: number;
}

export function spread(xs: number[]): Spread {
  const ok = xs.filter((x) => Number.isFinite(x));
  if (ok.length === 0) return { n: 0, min: NaN, p50: NaN, p99: NaN, max: NaN };
  return { n: ok.length, min: Math.min(...ok), p50: median(ok), p99: percentile(ok, 99), max: Math.max(...ok) };
}

/** A table row of a spread: [label, n, min, p50, p99, max], each divided by `div` and with `digits` decimals. */
export function spreadRow(label: string, xs: number[], div = 1, digits = 3): (string | number)[] {
  const s = spread(xs);
  const f = (v: number): string => (v / div).toFixed(digits);
  return [label, s.n, f(s.min), f(s.p50), f(s.p99), f(s.max)];
}

/** One named duration of a Server-Timing header (`plan;dur=1.2, vmm;dur=3`), NaN when absent. */
export function serverTimingMs(header: string | null, name: string): number {
  const m = new RegExp(`(?:^|,)\\s*${name};dur=([0-9.]+)`).exec(header ?? '');
  return m ? Number(m[1]) : NaN;
}

/**
 * One GET of `url`: resolves with the body once it is fully received, rejects on any error,
 * on a status other than 2xx, when the TCP connection is not made within `connectMs`, or
 * when the whole answer takes longer than `answerMs`.
 */
export function getOnce(url: string, connectMs: number, answerMs = 10_000, trace?: ReplyTrace): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.once('end', () => {
        clearTimeout(whole);
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 300) resolve(body);
        else reject(new Error(`HTTP ${code}`));
      });
      res.once('error', reject);
    });
    const connect = setTimeout(() => req.destroy(new Error('connect timeout')), connectMs);
    const whole = setTimeout(() => req.destroy(new Error('answer timeout')), answerMs);
    req.once('socket', (sock) =>
      sock.once('connect', () => {
        clearTimeout(connect);
        if (trace) trace.connectedAt = performance.now();
      }),
    );
    req.once('error', (e) => {
      clearTimeout(connect);
      clearTimeout(whole);
      reject(e);
    });
  });
}

/** What a firstReply() loop saw: its attempts, their errors, when the answering attempt connected. */
export interface ReplyTrace {
  attempts: number;
  errors: Record<string, number>;
  /** performance.now() when the TCP connection of the attempt that answered was made. */
  connectedAt?: number;
}

export function newTrace(): ReplyTrace {
  return { attempts: 0, errors: {} };
}

/**
 * Polls `url` every `everyMs` until one GET answers 2xx with its whole body; resolves with
 * performance.now() at that moment. Each attempt gives up on its connection after
 * `connectMs`; the loop gives up at `deadline` (a performance.now() value) or on `signal`.
 */
export async function firstReply(url: string, deadline: number, opts: { everyMs?: number; connectMs?: number; signal?: AbortSignal; trace?: ReplyTrace } = {}): Promise<number> {
  const everyMs = opts.everyMs ?? 5;
  const connectMs = opts.connectMs ?? 200;
  const trace = opts.trace ?? newTrace();
  let last = '';
  while (performance.now() < deadline) {
    if (opts.signal?.aborted) throw new Error(`gave up polling ${url}: ${String(opts.signal.reason)}`);
    trace.attempts++;
    try {
      await getOnce(url, connectMs, 10_000, trace);
      return performance.now();
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      last = err.message;
      const key = err.code ?? err.message;
      trace.errors[key] = (trace.errors[key] ?? 0) + 1;
    }
    await sleep(everyMs);
  }
  throw new Error(`no answer from ${url} in time (last: ${last})`);
}

/** Fields of /proc/<pid>/smaps_rollup, in MiB (Rss, Pss, Pss_Anon, Pss_File, Pss_Shmem, ...). */
export async function smapsRollupMiB(pid: number): Promise<Record<string, number>> {
  const text = await readFileAsync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^(\w+):\s+(\d+) kB$/gm)) out[m[1]!] = Number(m[2]) / 1024;
  return out;
}

/**
 * Waits (up to `timeoutMs`) until this host has no TCP connection to `ip` in a state that
 * may still send (anything but TIME_WAIT, FIN_WAIT2, CLOSE). A VM deleted while the host
 * still retransmits a FIN to it makes the VM network resolve that address again, and the
 * next VM that gets the address then waits for the next ARP retry. Returns how many are left.
 */
export async function waitTcpQuiet(ip: string, timeoutMs = 2000): Promise<number> {
  const hex = ip
    .split('.')
    .map((o) => Number(o).toString(16).padStart(2, '0').toUpperCase())
    .reverse()
    .join('');
  const end = performance.now() + timeoutMs;
  for (;;) {
    const table = await readFileAsync('/proc/net/tcp', 'utf8');
    let busy = 0;
    for (const line of table.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || !f[2]!.startsWith(`${hex}:`)) continue;
      if (!['05', '06', '07'].includes(f[3]!)) busy++;
    }
    if (busy === 0 || performance.now() > end) return busy;
    await sleep(20);
  }
}

/**
 * After BenchDaemon.close(): removes the tmpfs directory the daemon kept guest RAM files in
 * (the daemon leaves it behind, empty). Returns the files that were still in it: RAM files
 * of VMs that should be gone.
 */
export async function removeDaemonMemoryDir(home: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  const dir = new Paths(home).memory;
  const left = await readdir(dir).catch(() => [] as string[]);
  await rm(dir, { recursive: true, force: true });
  return left;
}

/** CPU time (user + system) a process has used so far, in ms; NaN once it is gone. */
export async function processCpuMs(pid: number): Promise<number> {
  const stat = await readFileAsync(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return NaN;
  // Fields after the command name (which may hold spaces) start at field 3.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, USER_HZ = 100
}

/** The host's CPU time so far (all cores), busy and total, in ms, from /proc/stat. */
export async function hostCpuMs(): Promise<{ busy: number; total: number }> {
  const line = (await readFileAsync('/proc/stat', 'utf8')).split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: ((total - idle) * 1000) / 100, total: (total * 1000) / 100 };
}

/**
 * CPU use over a window: of each process in `groups` (summed per group) and of the whole
 * host, as percent of one core. Call start() then stop().
 */
export function cpuWindow(groups: Record<string, () => number[]>): { stop(): Promise<Record<string, number> & { host: number; hostCores: number }> } {
  const read = async (): Promise<{ at: number; host: { busy: number; total: number }; g: Record<string, number> }> => {
    const g: Record<string, number> = {};
    for (const [k, pids] of Object.entries(groups)) {
      let sum = 0;
      for (const p of pids()) {
        const ms = await processCpuMs(p);
        if (Number.isFinite(ms)) sum += ms;
      }
      g[k] = sum;
    }
    return { at: performance.now(), host: await hostCpuMs(), g };
  };
  const first = read();
  return {
    async stop() {
      const a = await first;
      const b = await read();
      const wall = b.at - a.at;
      const out: Record<string, number> = {};
      for (const k of Object.keys(groups)) out[k] = ((b.g[k]! - a.g[k]!) / wall) * 100;
      const cores = (b.host.total - a.host.total) / wall;
      return { ...out, host: ((b.host.busy - a.host.busy) / wall) * 100, hostCores: cores };
    },
  };
}

/** Connects to a unix socket, retrying every `retryMs` while it is not there yet, until `deadline` (Date.now()). */
export async function connectUnix(path: string, deadline: number, retryMs = 20): Promise<Socket> {
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const c = createConnection(path);
        c.once('connect', () => {
          c.off('error', reject);
          resolve(c);
        });
        c.once('error', reject);
      });
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(retryMs);
    }
  }
}
