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

async function main(): Promise<void> {
  const d = await startBenchDaemon(['--max-vms', String(VMS + 10)]);
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
    await sleep(2000);
    const listed = ((await (await fetch(`${d.url}/vm`)).json()) as { vms: unknown[] }).vms.length;
    const ac = join(ROOT, 'node_modules', 'autocannon', 'autocannon.js');
    const out = await new Promise<string>((resolve, reject) => {
      const p = spawn(process.execPath, [ac, '-c', '32', '-d', '10', '-j', `${d.url}/vm`], { stdio: ['ignore', 'pipe', 'ignore'] });
      let s = '';
      p.stdout.on('data', (c: Buffer) => (s += c.toString()));
      p.once('exit', (code) => (code === 0 ? resolve(s) : reject(new Error(`autocannon exit ${code}`))));
    });
    const r = JSON.parse(out) as { requests: { average: number; p50: number }; latency: { p50: number; p99: number }; non2xx: number };
    process.stdout.write(`\nGET /vm with ${listed} VMs recorded (autocannon, 32 connections, 10 s, another process)\n\n`);
    printTable(['requests/s (mean)', 'latency p50 (ms)', 'latency p99 (ms)', 'non-2xx'], [[r.requests.average.toFixed(0), r.latency.p50, r.latency.p99, r.non2xx]]);
    process.stdout.write(`goal: > 5000 requests/s -> ${r.requests.average > 5000 ? 'met' : 'NOT met'}\n`);
  } finally {
    await d.close();
    await rm(shell, { recursive: true, force: true });
  }
}

await main();
