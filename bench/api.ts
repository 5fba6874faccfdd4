/**
 * bench/api: the daemon's own cost.
 *  1. POST /vm/run overhead: from the request to the VMM being started (the guest's boot
 *     excluded), median and p99 over RUNS creates; measured inside the daemon (Server-Timing
 *     "plan") and as the client sees it with ?wait=launched (which adds QEMU's own start-up,
 *     shown against QEMU started by hand to its QMP socket).
 *  2. GET /vm with VMS VMs recorded: requests per second from another process (autocannon).
 *
 *   node dist/bench/api.js            (root; RUNS=20 VMS=100 by default)
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { median, percentile, printTable, ROOT, startBenchDaemon } from './lib.js';

const RUNS = Number(process.env.RUNS ?? 20);
const VMS = Number(process.env.VMS ?? 100);

/** QEMU (same binary) started by hand until its QMP socket accepts: the VMM's own start-up. */
async function rawQemuToQmp(): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'uigniter-qmp-'));
  const sock = join(dir, 'qmp.sock');
  const t0 = performance.now();
  const child = spawn('qemu-system-x86_64', ['-M', 'microvm,x-option-roms=off,acpi=off', '-accel', 'tcg', '-nodefaults', '-no-user-config', '-display', 'none', '-S', '-qmp', `unix:${sock},server=on,wait=off`], { stdio: 'ignore' });
  const { createConnection } = await import('node:net');
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection(sock);
      s.once('data', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    await sleep(2);
  }
  const ms = performance.now() - t0;
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  await rm(dir, { recursive: true, force: true });
  return ms;
}

interface Load {
  tool: string;
  rps: number;
  p50: string;
  p99: string;
  errors: number;
}

function runTool(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let s = '';
    p.stdout.on('data', (c: Buffer) => (s += c.toString()));
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve(s) : reject(new Error(`${cmd} exit ${code}`))));
  });
}

/**
 * wrk when installed (a C client: it leaves the cores to the daemon), else autocannon.
 * Both run as a separate process with 32 connections for 10 s.
 */
async function loadTest(url: string): Promise<Load> {
  const wrk = await runTool('wrk', ['-t', '1', '-c', '32', '-d', '10s', '--latency', url]).catch(() => null);
  if (wrk) {
    const ms = (v: string): string => {
      const m = /([0-9.]+)(us|ms|s)/.exec(v)!;
      const n = Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
      return n.toFixed(2);
    };
    const errs = /Non-2xx or 3xx responses: (\d+)/.exec(wrk);
    const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(wrk);
    return {
      tool: 'wrk -t1 -c32',
      rps: Number(/Requests\/sec:\s+([0-9.]+)/.exec(wrk)![1]),
      p50: ms(/50%\s+(\S+)/.exec(wrk)![1]!),
      p99: ms(/99%\s+(\S+)/.exec(wrk)![1]!),
      errors: (errs ? Number(errs[1]) : 0) + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
    };
  }
  const out = await runTool(process.execPath, [join(ROOT, 'node_modules', 'autocannon', 'autocannon.js'), '-c', '32', '-d', '10', '-j', url]);
  const r = JSON.parse(out) as { requests: { average: number }; latency: { p50: number; p99: number }; non2xx: number; errors: number };
  return { tool: 'autocannon -c32', rps: r.requests.average, p50: String(r.latency.p50), p99: String(r.latency.p99), errors: r.non2xx + r.errors };
}

async function main(): Promise<void> {
  const d = await startBenchDaemon(['--max-vms', String(VMS + 10), '--max-vcpus', String(VMS + 10)]);
  const shell = await mkdtemp(join(tmpdir(), 'uigniter-bench-app-'));
  try {
    // A static busybox app: boots in about a second, 48 MiB, so 100 VMs fit anywhere.
    const { copyFile, chmod, writeFile } = await import('node:fs/promises');
    await copyFile('/bin/busybox', join(shell, 'busybox'));
    await chmod(join(shell, 'busybox'), 0o755);
    await writeFile(join(shell, 'uigniter.json'), JSON.stringify({ entry: 'busybox', args: ['sleep', '100000'], memMiB: 48 }));
    await d.cli(['image', 'build', shell, '--name', 'sleeper']);

    const plan: number[] = [];
    const client: number[] = [];
    const raw: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      raw.push(await rawQemuToQmp());
      const t0 = performance.now();
      const res = await fetch(`${d.url}/vm/run?wait=launched`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: 'sleeper', name: `o${i}` }) });
      client.push(performance.now() - t0);
      if (res.status !== 201) throw new Error(`run answered ${res.status}: ${await res.text()}`);
      plan.push(Number(/plan;dur=([0-9.]+)/.exec(res.headers.get('server-timing') ?? '')![1]));
      await d.client.remove(`o${i}`, { force: true });
    }
    process.stdout.write(`\nbench/api: POST /vm/run?wait=launched, ${RUNS} runs\n\n`);
    printTable(
      ['measure', 'median (ms)', 'p99 (ms)'],
      [
        ['daemon overhead: request -> VMM started (Server-Timing plan)', median(plan).toFixed(1), percentile(plan, 99).toFixed(1)],
        ['client: request -> answer (overhead + QEMU up to QMP)', median(client).toFixed(1), percentile(client, 99).toFixed(1)],
        ['baseline: QEMU by hand up to QMP', median(raw).toFixed(1), percentile(raw, 99).toFixed(1)],
      ],
    );
    process.stdout.write(`goal: overhead median < 20 ms -> ${median(plan) < 20 ? 'met' : 'NOT met'}\n`);

    process.stdout.write(`\nrecording ${VMS} VMs (launched, not waited for)...\n`);
    for (let i = 0; i < VMS; i++) {
      const res = await fetch(`${d.url}/vm/run?wait=launched`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: 'sleeper', name: `v${i}`, memMiB: 48 }) });
      if (res.status !== 201) throw new Error(`run answered ${res.status}: ${await res.text()}`);
    }
    // Measure once they are all up and idle, not while 100 guests boot on the same cores.
    for (;;) {
      const vms = ((await (await fetch(`${d.url}/vm`)).json()) as { vms: { state: string }[] }).vms;
      if (vms.every((v) => v.state === 'running')) break;
      await sleep(1000);
    }
    await sleep(2000);
    const body = await (await fetch(`${d.url}/vm`)).text();
    const listed = (JSON.parse(body) as { vms: unknown[] }).vms.length;
    const r = await loadTest(`${d.url}/vm`);
    process.stdout.write(`\nGET /vm with ${listed} VMs recorded (${(body.length / 1024).toFixed(0)} KiB of JSON each), ${r.tool} from another process, 10 s\n\n`);
    printTable(['requests/s', 'latency p50 (ms)', 'latency p99 (ms)', 'errors'], [[r.rps.toFixed(0), r.p50, r.p99, r.errors]]);
    process.stdout.write(`goal: > 5000 requests/s -> ${r.rps > 5000 ? 'met' : 'NOT met'}\n`);
  } finally {
    await d.close();
    await rm(shell, { recursive: true, force: true });
  }
}

await main();
