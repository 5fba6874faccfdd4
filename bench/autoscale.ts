/**
 * bench/autoscale: the demo's batch processed by autoscaled workers vs a fixed set of the
 * same maximum number of workers, in one run, runs alternating (auto, fixed, auto, fixed...).
 *
 *   auto   the `worker` service (min 0, max MAX) autoscaled on the db's backlog (http-json
 *          on http://<db>:9001/stats field `ready`, target 2, scale to zero after 5 s), at 0
 *          workers when the batch starts
 *   pool   the same service with a warm pool of 1 paused worker (a spare holds memory, no
 *          CPU: it is not counted in VM-s, and the table says so)
 *   fixed  MAX worker VMs booted (untimed) before the batch, removed after it
 *
 * Before the runs (untimed): one worker is started and removed, so the worker spec has its
 * template, as on a host that ran it before; otherwise the first autoscaled run cold-boots
 * every worker at once while the fixed workers boot before t0.
 *
 * Measured from the client's side, t0 = just before the first upload to the master:
 *   backlog   t0 -> the db first holds a task of this batch (polled every 50 ms): the
 *             demo's own upload path, the same in both modes
 *   reaction  backlog seen -> the db first shows a task leased or done (same poll)
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
import { createWorkerService, removeWorkerService, serviceEvents, serviceStatus } from '../src/demo/autoscale.js';
import { bootDemo, buildDemoImages, processBatch, removeDemo } from '../src/demo/demo-app.js';
import { MasterClient } from '../src/demo/master-client.js';
import { freePort, printTable, ROOT, spread, spreadRow, startBenchDaemon, type BenchDaemon } from './lib.js';

const RUNS = Number(process.env.RUNS ?? 3);
const IMAGES = Number(process.env.IMAGES ?? 30);
const MAX = Number(process.env.MAX ?? 3);
const LEASE_SEC = 10;

type Mode = 'auto' | 'pool' | 'fixed';
const MODES: Mode[] = ['auto', 'pool', 'fixed'];

interface Sample {
  backlogMs: number;
  reactionMs: number;
  makespanMs: number;
  vmSeconds: number;
  peak: number;
  ok: boolean;
}

async function dbStats(dbIp: string): Promise<TaskStats> {
  return (await (await fetch(`http://${dbIp}:9001/stats`, { signal: AbortSignal.timeout(3000) })).json()) as TaskStats;
}

async function waitPoolFull(d: BenchDaemon): Promise<void> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    const s = await serviceStatus(d.client);
    const p = s.pool ? await d.client.getPool(s.pool.id) : null;
    if (p && p.ready.length >= p.size) return;
    if (Date.now() > deadline) throw new Error("the worker service's pool did not fill");
    await sleep(250);
  }
}

async function oneRun(d: BenchDaemon, mode: Mode, master: MasterClient, dbIp: string, seed: number): Promise<Sample> {
  const workerNames = Array.from({ length: MAX }, (_, i) => `fixed-worker-${i + 1}`);
  if (mode === 'fixed') await Promise.all(workerNames.map((name) => d.client.run({ image: 'worker', name, env: { LEASE_SEC: String(LEASE_SEC) } })));
  else {
    await createWorkerService({ client: d.client, dbIp, maxWorkers: MAX, leaseSec: LEASE_SEC, target: 2, ...(mode === 'pool' ? { poolSize: 1 } : {}) });
    if (mode === 'pool') await waitPoolFull(d);
  }
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
    let backlogAt: number | null = null;
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
        if (s && backlogAt === null && s.total > before.total) backlogAt = performance.now();
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
    if (mode !== 'fixed') {
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
    if (mode !== 'fixed' && backlogAt !== null) {
      // Where the reaction went: the service's own events, relative to the backlog seen.
      const wallAtBacklog = Date.now() - (performance.now() - backlogAt);
      const evs = (await serviceEvents(d.client)).filter((e) => ['scaled', 'replica-started'].includes(e.kind)).slice(0, 4);
      process.stderr.write(`  ${mode} events after the backlog: ${evs.map((e) => `${((Date.parse(e.at) - wallAtBacklog) / 1000).toFixed(2)} s ${e.kind} ${e.message}`).join(' | ')}\n`);
    }
    const after = await dbStats(dbIp);
    const ok = batch.mismatches.length === 0 && after.done - before.done === IMAGES;
    return { backlogMs: (backlogAt ?? NaN) - t0, reactionMs: (reactionAt ?? NaN) - (backlogAt ?? NaN), makespanMs, vmSeconds: vmMs / 1000, peak, ok };
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
    const prep = await d.client.run({ image: 'worker', name: 'template-worker', env: { LEASE_SEC: String(LEASE_SEC) } });
    const deadline = Date.now() + 180_000;
    const hasTemplate = async (): Promise<boolean> => (await d.client.raw<{ templates: { source: { name: string } }[] }>('GET', '/templates')).templates.some((t) => t.source.name === prep.name);
    while (!(await hasTemplate())) {
      if (Date.now() > deadline) throw new Error('no template of the worker spec was made');
      await sleep(250);
    }
    await d.client.remove(prep.name, { force: true });
    const samples: Record<Mode, Sample[]> = { auto: [], pool: [], fixed: [] };
    for (let i = 0; i < RUNS; i++) {
      const order = [...MODES.slice(i % MODES.length), ...MODES.slice(0, i % MODES.length)];
      for (const m of order) {
        const s = await oneRun(d, m, master, dbIp, 10_000 * (i + 1) + 3000 * MODES.indexOf(m));
        samples[m].push(s);
        process.stderr.write(
          `run ${i + 1}/${RUNS} ${m}: backlog after ${(s.backlogMs / 1000).toFixed(2)} s, reaction ${(s.reactionMs / 1000).toFixed(2)} s, makespan ${(s.makespanMs / 1000).toFixed(1)} s, ${s.vmSeconds.toFixed(1)} VM-s, peak ${s.peak} workers, ${s.ok ? 'all right' : 'WRONG RESULTS'}\n`,
        );
      }
    }
    const col = (m: Mode, k: keyof Sample): number[] => samples[m].map((s) => s[k] as number);
    const label = (m: Mode): string => m.padEnd(5);
    process.stdout.write(`\nbench/autoscale: ${IMAGES} images (48x48) per batch, max ${MAX} workers, ${RUNS} runs each, alternating; seconds (VM-s for VM-seconds)\n`);
    process.stdout.write('auto: service at 0, no pool; pool: the same with 1 paused spare (not counted in VM-s); fixed: MAX workers booted before the batch\n');
    printTable(['measure', 'n', 'min', 'p50', 'p99', 'max'], [
      ...MODES.map((m) => spreadRow(`${label(m)} backlog: first upload -> first task in the db`, col(m, 'backlogMs'), 1000, 2)),
      ...MODES.map((m) => spreadRow(`${label(m)} reaction: first task in the db -> first task leased`, col(m, 'reactionMs'), 1000, 2)),
      ...MODES.map((m) => spreadRow(`${label(m)} makespan: first upload -> all results checked`, col(m, 'makespanMs'), 1000, 1)),
      ...MODES.map((m) => spreadRow(`${label(m)} worker VM-s: first upload -> ${m === 'fixed' ? 'last task done' : 'back at 0'}`, col(m, 'vmSeconds'), 1, 1)),
    ]);
    const p50 = (m: Mode, k: keyof Sample): number => spread(col(m, k)).p50;
    for (const m of ['auto', 'pool'] as const) {
      const makespan = p50(m, 'makespanMs') / p50('fixed', 'makespanMs');
      const vms = p50(m, 'vmSeconds') / p50('fixed', 'vmSeconds');
      process.stdout.write(
        `\n${m} vs fixed (baseline, same run), p50: reaction ${(p50(m, 'reactionMs') / 1000).toFixed(2)} s (goal < 1 s: ${p50(m, 'reactionMs') < 1000 ? 'met' : 'NOT met'}), makespan ${makespan.toFixed(2)}x (goal <= 1.10), VM-s ${vms.toFixed(2)}x (goal <= 0.60): ${makespan <= 1.1 && vms <= 0.6 ? 'met' : 'NOT met'}`,
      );
    }
    process.stdout.write('\n');
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
