/**
 * bench/control: the industrial example's control loop and its on-demand alarm handler, with
 * the services as microVMs against the same services as host processes, in one run, the
 * modes alternating (native, vm, native, vm...). Both run with the same settings (the
 * microVM timings of `uigniter demo industrial`: plant step and gateway poll every 200 ms,
 * heartbeats every 500 ms, takeover after 3 s, loop deadline 1 s), so the only difference is
 * where the services run.
 *
 * Each round, after the plant settled at its setpoints (untimed):
 *   loop      the plant's own measure of every control loop over WINDOW seconds of normal
 *             operation: a reading's sample time -> the command answering it applied at the
 *             plant (both on the plant's clock); p50, p99 and deadline misses
 *   wake      ALARMS times, with the alarm handler at zero replicas: a frozen temperature
 *             sensor is injected (POST /faults on the plant) and the alarm it raises is
 *             handled by a handler started for it: raised -> handled as the historian
 *             received both (one clock); and, from this client's side, the fault's POST
 *             answered -> the historian first shows the alarm handled (polled every 50 ms)
 *
 *   node dist/bench/control.js   (root; ROUNDS=2 per mode, WINDOW=20 s, ALARMS=4)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startIcsCluster, type IcsCluster } from '@uigniter-demo/ics-native';
import { runScenario, type ScenarioTarget } from '@uigniter-demo/ics-scenarios';
import { ALARM_SERVICE, buildIcsImages, deployIcs, removeIcs } from '../src/demo/industrial/ics-deployment.js';
import { icsVmTarget } from '../src/demo/industrial/ics-vm-target.js';
import { VM_TIMINGS } from '../src/demo/industrial/industrial-demo.js';
import { median, printTable, ROOT, spreadRow, startBenchDaemon, type BenchDaemon } from './lib.js';

const ROUNDS = Number(process.env.ROUNDS ?? 2);
const WINDOW_S = Number(process.env.WINDOW ?? 20);
const ALARMS = Number(process.env.ALARMS ?? 4);
type Mode = 'native' | 'vm';

interface Round {
  loopP50: number;
  loopP99: number;
  misses: number;
  loops: number;
  handledMs: number[];
  clientMs: number[];
  woke: number;
}

interface StoredAlarm {
  id: string;
  kind: string | null;
  tag: string | null;
  handledAt: number | null;
  handledMs: number | null;
}

const log = (l: string): void => void process.stderr.write(`${l}\n`);

async function getJson<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** One alarm raised with the handler at zero, timed from this client and from the historian. */
async function wakeOnce(target: ScenarioTarget, handlerRunning: () => Promise<boolean>): Promise<{ handledMs: number; clientMs: number; woke: boolean }> {
  await until('the alarm handler at zero', async () => ((await handlerRunning()) ? undefined : true), 120_000, 250);
  const known = new Set((await getJson<{ alarms: StoredAlarm[] }>(`${target.historianUrl}/alarms`)).alarms.map((a) => a.id));
  await getJson(`${target.plantUrl}/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'frozen-sensor', sensor: 'temp', durationMs: 4000 * target.timeFactor }) });
  const t0 = performance.now();
  const handled = await until(
    'the alarm handled in the historian',
    async () => (await getJson<{ alarms: StoredAlarm[] }>(`${target.historianUrl}/alarms`)).alarms.find((a) => !known.has(a.id) && a.kind === 'frozen' && a.handledAt !== null),
    60_000,
  );
  const clientMs = performance.now() - t0;
  // The fault ends; wait until it is over so the next round starts from a quiet plant.
  await until('no pending alarm', async () => ((await getJson<{ pending: number }>(`${target.historianUrl}/alarms/pending`)).pending === 0 ? true : undefined), 60_000, 200);
  await sleep(4000 * target.timeFactor);
  return { handledMs: handled.handledMs ?? Number.NaN, clientMs, woke: true };
}

async function measure(target: ScenarioTarget, handlerRunning: () => Promise<boolean>): Promise<Round> {
  target.normalMs = WINDOW_S * 1000;
  const normal = await runScenario('normal', target);
  if (normal.failures.length > 0) log(`  normal: ${normal.failures.join('; ')}`);
  const r: Round = { loopP50: normal.loopLatencyMs.p50, loopP99: normal.loopLatencyMs.p99, misses: normal.deadlineMisses, loops: Math.round(normal.loopLatencyMs.count / 3), handledMs: [], clientMs: [], woke: 0 };
  for (let i = 0; i < ALARMS; i++) {
    const w = await wakeOnce(target, handlerRunning);
    r.handledMs.push(w.handledMs);
    r.clientMs.push(w.clientMs);
    log(`  alarm ${i + 1}/${ALARMS}: handled ${Math.round(w.handledMs)} ms after it was raised (historian), ${Math.round(w.clientMs)} ms after the fault (client)`);
  }
  return r;
}

async function nativeRound(): Promise<Round> {
  const dataDir = await mkdtemp(join(tmpdir(), 'uigniter-bench-ics-'));
  const { timeFactor, deadlineMs, periodMs, heartbeatMs, takeoverMs } = VM_TIMINGS;
  let cluster: IcsCluster | null = null;
  try {
    cluster = await startIcsCluster({
      dataDir,
      serviceEnv: {
        plant: { DEADLINE_MS: String(deadlineMs), CONTROL_PERIOD_MS: String(periodMs) },
        iogateway: { CONTROL_PERIOD_MS: String(periodMs) },
        'controller-a': { HEARTBEAT_MS: String(heartbeatMs), TAKEOVER_MS: String(takeoverMs) },
        'controller-b': { HEARTBEAT_MS: String(heartbeatMs), TAKEOVER_MS: String(takeoverMs) },
      },
    });
    const c = cluster;
    return await measure(c.scenarioTarget(timeFactor), async () => c.service('alarm').running);
  } finally {
    await cluster?.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function vmRound(d: BenchDaemon): Promise<Round> {
  const { timeFactor, ...timings } = VM_TIMINGS;
  await removeIcs(d.client, { volumes: true });
  try {
    const { addresses } = await deployIcs({ client: d.client, appsDir: join(ROOT, 'apps'), log: (l) => log(`  ${l}`), ...timings });
    return await measure(icsVmTarget(d.client, addresses, timeFactor), async () => (await d.client.getService(ALARM_SERVICE)).status.running > 0);
  } finally {
    await removeIcs(d.client, { volumes: true });
  }
}

const d = await startBenchDaemon();
const results: Record<Mode, Round[]> = { native: [], vm: [] };
try {
  await buildIcsImages({ client: d.client, appsDir: join(ROOT, 'apps'), log: (l) => log(`  ${l}`) });
  for (let i = 0; i < ROUNDS; i++) {
    for (const mode of ['native', 'vm'] as const) {
      log(`round ${i + 1}/${ROUNDS}: ${mode}`);
      results[mode].push(mode === 'native' ? await nativeRound() : await vmRound(d));
    }
  }
} finally {
  await d.close();
}

const all = (m: Mode, f: (r: Round) => number[]): number[] => results[m].flatMap(f);
console.log(`\nbench/control: the industrial example, ${ROUNDS} rounds per mode alternating, ${WINDOW_S} s of normal operation and ${ALARMS} alarms from zero per round`);
console.log('(plant step and gateway poll 200 ms, loop deadline 1000 ms, the same settings in both modes)\n');
printTable(
  ['mode', 'round', 'loops', 'loop p50 ms', 'loop p99 ms', 'deadline misses'],
  (['native', 'vm'] as const).flatMap((m) => results[m].map((r, i) => [m, i + 1, r.loops, r.loopP50, r.loopP99, r.misses])),
);
console.log('');
printTable(['wake-up from zero (ms)', 'n', 'min', 'median', 'p99', 'max'], [
  ...(['native', 'vm'] as const).map((m) => spreadRow(`${m}: alarm raised -> handled (historian)`, all(m, (r) => r.handledMs), 1, 0)),
  ...(['native', 'vm'] as const).map((m) => spreadRow(`${m}: fault POST answered -> handled seen (client)`, all(m, (r) => r.clientMs), 1, 0)),
]);
const p = (m: Mode, f: (r: Round) => number): number => median(results[m].map(f));
console.log(`\nratio vm/native: loop p50 ${(p('vm', (r) => r.loopP50) / p('native', (r) => r.loopP50)).toFixed(2)}, loop p99 ${(p('vm', (r) => r.loopP99) / p('native', (r) => r.loopP99)).toFixed(2)} (median of rounds)`);
