/**
 * bench/autoscale: the demo's batch processed by autoscaled workers vs a fixed set of the
 * same maximum number of workers, in one run, runs alternating (auto, fixed, auto, fixed...).
 *
 *   auto   the `worker` service (min 0, max MAX) autoscaled on the db's backlog (http-json
 *          on http://<db>:9001/stats field `ready`, target 2, scale to zero after 5 s), at 0
 *          workers when the batch starts
 *   pool   the same service with a warm pool of 1 paused worker (a spare holds memory, no
 *          CPU: it is not counted in VM-s, and the table says so)
 *   pause  the same service as auto with scaleDown 'pause': a scale-down pauses workers and
 *          the next scale-up resumes them, warm (paused workers hold memory, no CPU: they
 *          are counted apart, as paused VM-s)
 *   fixed  MAX worker VMs booted (untimed) before the batch, removed after it
 *
 * Before the runs (untimed): one worker is started and removed, so the worker spec has its
 * template, as on a host that ran it before; otherwise the first autoscaled run cold-boots
 * every worker at once while the fixed workers boot before t0.
 *
 * The images arrive as one continuous batch (default), or, with BURSTS=n, as n batches of
 * IMAGES/n with GAP_S seconds of quiet between one batch's last result and the next one's
 * first upload: an event-driven load, where a fixed set of workers idles between events.
 *
 * Measured from the client's side, t0 = just before the first upload to the master:
 *   backlog   a batch's first upload -> the db first holds a task of it (polled every
 *             50 ms): the demo's own upload path, the same in every mode; one per batch
 *   reaction  backlog seen -> the db first shows a task leased or done (same poll); one
 *             per batch (with bursts, each burst's reaction is a wake-up from zero)
 *   makespan  t0 -> every task done and every result fetched and checked pixel by pixel
 *             (with bursts, the quiet gaps are in it, the same in every mode)
 *   VM-s      worker VMs running or stopping (sampled every 1 s from the VM list) x time, from t0 to the
 *             last task done (fixed) or to the service back at 0 workers (auto); the fixed
 *             workers' boot before t0 is not counted
 *
 *   node dist/bench/autoscale.js   (root; RUNS=3 each by default, IMAGES=30, MAX=3,
 *                                   BURSTS=1, GAP_S=20, ZERO_AFTER_MS=5000: the autoscaled
 *                                   modes' scaleToZeroAfterMs; MODES=auto,pool,pause,fixed)
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
const BURSTS = Number(process.env.BURSTS ?? 1);
const GAP_S = Number(process.env.GAP_S ?? 20);
const PER_BURST = IMAGES / BURSTS;
const ZERO_AFTER_MS = Number(process.env.ZERO_AFTER_MS ?? 5000);
const LEASE_SEC = 10;

type Mode = 'auto' | 'pool' | 'pause' | 'fixed';
const ALL_MODES: readonly Mode[] = ['auto', 'pool', 'pause', 'fixed'];
const MODES: Mode[] = process.env.MODES ? process.env.MODES.split(',').map((m) => m.trim() as Mode) : [...ALL_MODES];
for (const m of MODES) if (!ALL_MODES.includes(m)) throw new Error(`MODES: unknown mode '${m}' (${ALL_MODES.join(', ')})`);
if (MODES.length === 0 || new Set(MODES).size !== MODES.length) throw new Error(`MODES: each of ${ALL_MODES.join(', ')} at most once, at least one`);

interface Sample {
  /** One per burst. */
  backlogMs: number[];
  /** One per burst. */
  reactionMs: number[];
  makespanMs: number;
  vmSeconds: number;
  /** Worker VMs paused (mode pause) x time: memory held, no CPU. */
  pausedSeconds: number;
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

/** Backlog and reaction of one burst, from the db's counters polled every 50 ms. */
function watchReaction(dbIp: string, before: TaskStats): { done: Promise<{ backlogAt: number | null; reactionAt: number | null }>; stop: () => void } {
  let stop = false;
  const done = (async () => {
    let backlogAt: number | null = null;
    let reactionAt: number | null = null;
    while (!stop && reactionAt === null) {
      const s = await dbStats(dbIp).catch(() => null);
      if (s && backlogAt === null && s.total > before.total) backlogAt = performance.now();
      if (s && s.leased + s.done + s.failed > before.leased + before.done + before.failed) reactionAt = performance.now();
      await sleep(50);
    }
    return { backlogAt, reactionAt };
  })();
  return { done, stop: () => void (stop = true) };
}

async function waitTasksDone(dbIp: string, before: TaskStats, count: number): Promise<number> {
  for (;;) {
    const s = await dbStats(dbIp).catch(() => null);
    if (s && s.done + s.failed - before.done - before.failed >= count) return performance.now();
    await sleep(100);
  }
}

async function oneRun(d: BenchDaemon, mode: Mode, master: MasterClient, dbIp: string, seed: number): Promise<Sample> {
  const workerNames = Array.from({ length: MAX }, (_, i) => `fixed-worker-${i + 1}`);
  if (mode === 'fixed') await Promise.all(workerNames.map((name) => d.client.run({ image: 'worker', name, env: { LEASE_SEC: String(LEASE_SEC) } })));
  else {
    await createWorkerService({
      client: d.client,
      dbIp,
      maxWorkers: MAX,
      leaseSec: LEASE_SEC,
      scaleToZeroAfterMs: ZERO_AFTER_MS,
      ...(mode === 'pool' ? { poolSize: 1 } : {}),
      ...(mode === 'pause' ? { scaleDown: 'pause' as const } : {}),
    });
    if (mode === 'pool') await waitPoolFull(d);
  }
  try {
    const first = await dbStats(dbIp);
    // Worker VMs that run or are stopping (a scale-down drains them), from the VM list: a
    // replica that drains has left the service's own count but still holds its VM.
    const isWorker = (name: string): boolean => (mode === 'fixed' ? workerNames.includes(name) : /^worker-[0-9a-f]{6}$/.test(name));
    const counts = async (): Promise<{ up: number; paused: number }> => {
      const workers = (await d.client.list()).filter((v) => isWorker(v.name));
      return { up: workers.filter((v) => v.state === 'running' || v.state === 'stopping').length, paused: workers.filter((v) => v.state === 'paused').length };
    };
    const running = async (): Promise<number> => (await counts()).up;
    let stop = false;
    let vmMs = 0;
    let pausedMs = 0;
    let peak = 0;
    const t0 = performance.now();
    // VM-seconds, 1 s samples.
    const sampler = (async () => {
      let prevT = performance.now();
      let prev = await counts().catch(() => ({ up: 0, paused: 0 }));
      while (!stop) {
        await sleep(1000);
        const n = await counts().catch(() => prev);
        const now = performance.now();
        vmMs += prev.up * (now - prevT);
        pausedMs += prev.paused * (now - prevT);
        peak = Math.max(peak, n.up);
        prevT = now;
        prev = n;
      }
    })();
    const backlogMs: number[] = [];
    const reactionMs: number[] = [];
    const mismatches: string[] = [];
    let lastDoneAt = t0;
    let checkedAt = t0;
    const backlogsAt: number[] = [];
    try {
      for (let b = 0; b < BURSTS; b++) {
        // The quiet between bursts: from the last result checked to the next first upload.
        if (b > 0) await sleep(GAP_S * 1000);
        const before = await dbStats(dbIp);
        const tb = performance.now();
        const watch = watchReaction(dbIp, before);
        try {
          const batch = await processBatch(master, PER_BURST, { log: () => undefined, seed: seed + b * PER_BURST, size: 48, timeoutMs: 600_000 });
          mismatches.push(...batch.mismatches);
          checkedAt = performance.now();
          lastDoneAt = await waitTasksDone(dbIp, before, PER_BURST);
        } finally {
          watch.stop();
        }
        const { backlogAt, reactionAt } = await watch.done;
        backlogMs.push((backlogAt ?? NaN) - tb);
        reactionMs.push((reactionAt ?? NaN) - (backlogAt ?? NaN));
        if (backlogAt !== null) backlogsAt.push(backlogAt);
      }
    } finally {
      if (mode !== 'fixed') {
        const deadline = Date.now() + 120_000;
        while (Date.now() < deadline) {
          const s = (await serviceStatus(d.client)).status;
          if (s.desired === 0 && s.running === 0 && (await running()) === 0) break;
          await sleep(250);
        }
      } else {
        // Fixed workers: counted to the last task done.
        await sleep(Math.max(0, 1000 - (performance.now() - lastDoneAt)));
      }
      stop = true;
      await sampler;
    }
    const makespanMs = checkedAt - t0;
    if (mode !== 'fixed') {
      // Where each reaction went: the service's first events after each burst's backlog.
      const wallOf = (at: number): number => Date.now() - (performance.now() - at);
      const evs = (await serviceEvents(d.client)).filter((e) => ['scaled', 'replica-started', 'replica-resumed'].includes(e.kind));
      for (const [b, at] of backlogsAt.entries()) {
        const wall = wallOf(at);
        const next = evs.filter((e) => Date.parse(e.at) >= wall - 1000).slice(0, 2);
        process.stderr.write(`  ${mode} burst ${b + 1}: ${next.map((e) => `${((Date.parse(e.at) - wall) / 1000).toFixed(2)} s ${e.kind} ${e.message}`).join(' | ')}\n`);
      }
    }
    const after = await dbStats(dbIp);
    const ok = mismatches.length === 0 && after.done - first.done === IMAGES;
    return { backlogMs, reactionMs, makespanMs, vmSeconds: vmMs / 1000, pausedSeconds: pausedMs / 1000, peak, ok };
  } finally {
    if (mode === 'fixed') for (const name of workerNames) await d.client.remove(name, { force: true }).catch(() => undefined);
    else await removeWorkerService(d.client);
  }
}

const secs = (xs: number[]): string => xs.map((x) => (x / 1000).toFixed(2)).join(', ');

async function main(): Promise<void> {
  if (!Number.isInteger(PER_BURST) || PER_BURST < 1) throw new Error(`IMAGES (${IMAGES}) must be a multiple of BURSTS (${BURSTS})`);
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
    const samples: Record<Mode, Sample[]> = { auto: [], pool: [], pause: [], fixed: [] };
    for (let i = 0; i < RUNS; i++) {
      const order = [...MODES.slice(i % MODES.length), ...MODES.slice(0, i % MODES.length)];
      for (const m of order) {
        const s = await oneRun(d, m, master, dbIp, 10_000 * (i + 1) + 3000 * MODES.indexOf(m));
        samples[m].push(s);
        process.stderr.write(
          `run ${i + 1}/${RUNS} ${m}: backlog after ${secs(s.backlogMs)} s, reaction ${secs(s.reactionMs)} s, makespan ${(s.makespanMs / 1000).toFixed(1)} s, ${s.vmSeconds.toFixed(1)} VM-s (+${s.pausedSeconds.toFixed(1)} paused), peak ${s.peak} workers, ${s.ok ? 'all right' : 'WRONG RESULTS'}\n`,
        );
      }
    }
    const col = (m: Mode, k: keyof Sample): number[] => samples[m].flatMap((s) => s[k] as number | number[]);
    const label = (m: Mode): string => m.padEnd(5);
    const arrival = BURSTS === 1 ? 'one continuous batch' : `${BURSTS} bursts of ${PER_BURST}, ${GAP_S} s quiet between them (backlog and reaction: one sample per burst)`;
    process.stdout.write(`\nbench/autoscale: ${IMAGES} images (48x48) per run as ${arrival}; max ${MAX} workers, ${RUNS} runs each, alternating; seconds (VM-s for VM-seconds)\n`);
    process.stdout.write(
      `auto: service at 0, no pool; pool: the same with 1 paused spare (not counted in VM-s); pause: auto with scaleDown 'pause' (paused workers counted apart); fixed: MAX workers booted before the batch; scaleToZeroAfterMs ${ZERO_AFTER_MS}\n`,
    );
    printTable(['measure', 'n', 'min', 'p50', 'p99', 'max'], [
      ...MODES.map((m) => spreadRow(`${label(m)} backlog: a batch's first upload -> its first task in the db`, col(m, 'backlogMs'), 1000, 2)),
      ...MODES.map((m) => spreadRow(`${label(m)} reaction: a batch's first task in the db -> first leased`, col(m, 'reactionMs'), 1000, 2)),
      ...MODES.map((m) => spreadRow(`${label(m)} makespan: first upload -> all results checked`, col(m, 'makespanMs'), 1000, 1)),
      ...MODES.map((m) => spreadRow(`${label(m)} worker VM-s: first upload -> ${m === 'fixed' ? 'last task done' : 'back at 0'}`, col(m, 'vmSeconds'), 1, 1)),
      ...MODES.filter((m) => m === 'pause').map((m) => spreadRow(`${label(m)} paused worker VM-s (memory held, no CPU), same span`, col(m, 'pausedSeconds'), 1, 1)),
    ]);
    const p50 = (m: Mode, k: keyof Sample): number => spread(col(m, k)).p50;
    for (const m of MODES.includes('fixed') ? MODES.filter((x) => x !== 'fixed') : []) {
      const makespan = p50(m, 'makespanMs') / p50('fixed', 'makespanMs');
      const vms = p50(m, 'vmSeconds') / p50('fixed', 'vmSeconds');
      process.stdout.write(
        `\n${m} vs fixed (baseline, same run), p50: reaction ${(p50(m, 'reactionMs') / 1000).toFixed(2)} s (goal < 1 s: ${p50(m, 'reactionMs') < 1000 ? 'met' : 'NOT met'}), makespan ${makespan.toFixed(2)}x (goal <= 1.10), VM-s ${vms.toFixed(2)}x (goal <= 0.60): ${makespan <= 1.1 && vms <= 0.6 ? 'met' : 'NOT met'}`,
      );
    }
    process.stdout.write('\n');
    process.stdout.write(`every result right, every task done once: ${MODES.every((m) => samples[m].every((s) => s.ok))}\n`);
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
