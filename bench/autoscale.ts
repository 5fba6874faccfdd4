/**
 * bench/autoscale: the demo's batch processed by autoscaled workers vs a fixed set of the
 * same maximum number of workers, in one run, runs alternating (auto, fixed, auto, fixed...).
 *
 *   auto   the `worker` service (min 0, max MAX) autoscaled on the db's backlog (http-json
 *          on http://<db>:9001/stats field `ready`, target 2, scale to zero after 5 s), at 0
 *          workers when the batch starts
 *   fixed  MAX worker VMs booted (untimed) before the batch, removed after it
 *
 * Measured from the client's side, t0 = just before the first upload to the master:
 *   reaction  t0 -> the db first shows a task leased or done (polled every 50 ms)
 *   makespan  t0 -> every task done and every result fetched and checked pixel by pixel
 *   VM-s      worker VMs running (sampled every 1 s from the daemon) x time, from t0 to the
 *             last task done (fixed) or to the service back at 0 workers (auto); the fixed
 *             workers' boot before t0 is not counted
 *
 *   node dist/bench/autoscale.js   (root; RUNS=3 each by default, IMAGES=30, MAX=3)
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TaskStats } from '@uigniter-demo/common/task-record';
import { createWorkerService, removeWorkerService, serviceStatus } from '../src/demo/autoscale.js';
import { bootDemo, buildDemoImages, processBatch, removeDemo } from '../src/demo/demo-app.js';
import { MasterClient } from '../src/demo/master-client.js';
import { freePort, printTable, ROOT, spread, spreadRow, startBenchDaemon, type BenchDaemon } from './lib.js';

const RUNS = Number(process.env.RUNS ?? 3);
const IMAGES = Number(process.env.IMAGES ?? 30);
const MAX = Number(process.env.MAX ?? 3);
const LEASE_SEC = 10;

type Mode = 'auto' | 'fixed';

interface Sample {
  reactionMs: number;
  makespanMs: number;
  vmSeconds: number;
  peak: number;
  ok: boolean;
}

async function dbStats(dbIp: string): Promise<TaskStats> {
  return (await (await fetch(`http://${dbIp}:9001/stats`, { signal: AbortSignal.timeout(3000) })).json()) as TaskStats;
}

async function oneRun(d: BenchDaemon, mode: Mode, master: MasterClient, dbIp: string, seed: number): Promise<Sample> {
  const workerNames = Array.from({ length: MAX }, (_, i) => `fixed-worker-${i + 1}`);
  if (mode === 'fixed') await Promise.all(workerNames.map((name) => d.client.run({ image: 'worker', name, env: { LEASE_SEC: String(LEASE_SEC) } })));
  else await createWorkerService({ client: d.client, dbIp, maxWorkers: MAX, leaseSec: LEASE_SEC, target: 2 });
  try {
    const before = await dbStats(dbIp);
    const running = async (): Promise<number> =>
      mode === 'fixed' ? (await d.client.list()).filter((v) => workerNames.includes(v.name) && v.state === 'running').length : (await serviceStatus(d.client)).status.running;
    let stop = false;
    let vmMs = 0;
    let peak = 0;
    let lastDoneAt: number | null = null;
    const t0 = performance.now();
    let reactionAt: number | null = null;
    // VM-seconds, 1 s samples.
    const sampler = (async () => {
      let prevT = performance.now();
      let prevN = await running().catch(() => 0);
      while (!stop) {
        await sleep(1000);
        const n = await running().catch(() => prevN);
        const now = performance.now();
        vmMs += prevN * (now - prevT);
        peak = Math.max(peak, n);
        prevT = now;
        prevN = n;
      }
    })();
    const reaction = (async () => {
      while (!stop && reactionAt === null) {
        const s = await dbStats(dbIp).catch(() => null);
        if (s && s.leased + s.done + s.failed > before.leased + before.done + before.failed) reactionAt = performance.now();
        await sleep(50);
      }
    })();
    const lastDone = (async () => {
      while (!stop) {
        const s = await dbStats(dbIp).catch(() => null);
        if (s && s.done + s.failed - before.done - before.failed >= IMAGES) {
          lastDoneAt = performance.now();
          return;
        }
        await sleep(100);
      }
    })();
    const batch = await processBatch(master, IMAGES, { log: () => undefined, seed, size: 48, timeoutMs: 600_000 });
    const makespanMs = performance.now() - t0;
    await lastDone;
    if (mode === 'auto') {
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline) {
        const s = (await serviceStatus(d.client)).status;
        if (s.desired === 0 && s.running === 0) break;
        await sleep(250);
      }
    } else {
      // Fixed workers: counted to the last task done.
      await sleep(Math.max(0, 1000 - (performance.now() - (lastDoneAt ?? performance.now()))));
    }
    stop = true;
    await Promise.all([sampler, reaction]);
    const after = await dbStats(dbIp);
    const ok = batch.mismatches.length === 0 && after.done - before.done === IMAGES;
    return { reactionMs: (reactionAt ?? NaN) - t0, makespanMs, vmSeconds: vmMs / 1000, peak, ok };
  } finally {
    if (mode === 'fixed') for (const name of workerNames) await d.client.remove(name, { force: true }).catch(() => undefined);
    else await removeWorkerService(d.client);
  }
}

async function main(): Promise<void> {
  const d = await startBenchDaemon();
  try {
    await buildDemoImages({ client: d.client, appsDir: join(ROOT, 'apps'), log: () => undefined });
    const port = await freePort();
    const vms = await bootDemo({ client: d.client, appsDir: '', workers: 0, masterPort: port, leaseSec: LEASE_SEC, log: (l) => void process.stderr.write(`${l}\n`) });
    const dbIp = vms.find((v) => v.name === 'db')!.ip!;
    const master = new MasterClient(`http://127.0.0.1:${port}`);
    const samples: Record<Mode, Sample[]> = { auto: [], fixed: [] };
    for (let i = 0; i < RUNS; i++) {
      const order: Mode[] = i % 2 === 0 ? ['auto', 'fixed'] : ['fixed', 'auto'];
      for (const m of order) {
        const s = await oneRun(d, m, master, dbIp, 10_000 * (i + 1) + (m === 'auto' ? 0 : 5000));
        samples[m].push(s);
        process.stderr.write(
          `run ${i + 1}/${RUNS} ${m}: reaction ${(s.reactionMs / 1000).toFixed(2)} s, makespan ${(s.makespanMs / 1000).toFixed(1)} s, ${s.vmSeconds.toFixed(1)} VM-s, peak ${s.peak} workers, ${s.ok ? 'all right' : 'WRONG RESULTS'}\n`,
        );
      }
    }
    const col = (m: Mode, k: keyof Sample): number[] => samples[m].map((s) => s[k] as number);
    process.stdout.write(`\nbench/autoscale: ${IMAGES} images (48x48) per batch, max ${MAX} workers, ${RUNS} runs each, alternating; seconds (VM-s for VM-seconds)\n`);
    printTable(['measure', 'n', 'min', 'p50', 'p99', 'max'], [
      spreadRow('auto  reaction: first upload -> first task leased', col('auto', 'reactionMs'), 1000, 2),
      spreadRow('fixed reaction: first upload -> first task leased', col('fixed', 'reactionMs'), 1000, 2),
      spreadRow('auto  makespan: first upload -> all results checked', col('auto', 'makespanMs'), 1000, 1),
      spreadRow('fixed makespan: first upload -> all results checked', col('fixed', 'makespanMs'), 1000, 1),
      spreadRow('auto  worker VM-s: first upload -> back at 0', col('auto', 'vmSeconds'), 1, 1),
      spreadRow('fixed worker VM-s: first upload -> last task done', col('fixed', 'vmSeconds'), 1, 1),
    ]);
    const p50 = (m: Mode, k: keyof Sample): number => spread(col(m, k)).p50;
    process.stdout.write(
      `\nauto vs fixed (baseline, same run), p50: reaction ${(p50('auto', 'reactionMs') / p50('fixed', 'reactionMs')).toFixed(2)}x, makespan ${(p50('auto', 'makespanMs') / p50('fixed', 'makespanMs')).toFixed(2)}x, VM-s ${(p50('auto', 'vmSeconds') / p50('fixed', 'vmSeconds')).toFixed(2)}x\n`,
    );
    process.stdout.write(`every result right, every task done once: ${[...samples.auto, ...samples.fixed].every((s) => s.ok)}\n`);
  } finally {
    await removeWorkerService(d.client).catch(() => undefined);
    await removeDemo(d.client, { volumes: true }).catch(() => undefined);
    await d.close();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/autoscale failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
