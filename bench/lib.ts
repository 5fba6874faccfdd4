import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { UigniterClient } from '../src/client/client.js';
import { run } from '../src/util/exec.js';
import { freePort } from '../src/util/net.js';
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
  const child = spawn(process.execPath, [CLI, 'daemon', '--port', String(port), ...net, ...extraArgs], {
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
  return {
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
    },
  };
}

export function processRssMiB(pid: number): Promise<number> {
  return import('node:fs/promises').then(async ({ readFile }) => {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
  });
}
