import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runScenario, SCENARIOS, type ScenarioName, type ScenarioReport, type ScenarioTarget } from '@uigniter-demo/ics-scenarios';
import type { UigniterClient } from '../../client/client.js';
import { buildIcsImages, deployIcs, removeIcs } from './ics-deployment.js';
import { icsVmTarget } from './ics-vm-target.js';

export { SCENARIOS, type ScenarioName, type ScenarioReport };

/**
 * Emulated guests (TCG, 2 cores for eight of them) are slower: on microVMs the scenarios
 * run three times longer, the plant steps and the gateway polls every 200 ms instead of
 * 100, the loop deadline is 1 s, and the standby takes over after 3 s of silent heartbeats
 * (every 500 ms) instead of 1 s: with the native timings the guests fell behind and the
 * controllers took turns taking over from each other.
 */
export const VM_TIMINGS = { timeFactor: 3, deadlineMs: 1000, periodMs: 200, heartbeatMs: 500, takeoverMs: 3000 } as const;

export interface IndustrialRunOptions {
  scenarios: ScenarioName[];
  /** 'vm': the services as microVMs through the daemon; 'native': as host processes. */
  mode: 'vm' | 'native';
  client?: UigniterClient;
  appsDir: string;
  timeFactor?: number;
  /** How long the normal scenario watches the plant. */
  normalMs?: number;
  keep?: boolean;
  log: (line: string) => void;
}

export interface IndustrialRun {
  mode: 'vm' | 'native';
  reports: ScenarioReport[];
}

/**
 * `uigniter demo industrial`: brings the plant, broker, I/O gateway, controllers,
 * historian and on-demand alarm handler up (as microVMs, or natively for comparison), runs
 * each scenario against them and returns the reports; takes it all down unless `keep`.
 */
export async function runIndustrial(o: IndustrialRunOptions): Promise<IndustrialRun> {
  const reports: ScenarioReport[] = [];
  const run = async (target: ScenarioTarget): Promise<void> => {
    if (o.normalMs !== undefined) target.normalMs = o.normalMs;
    for (const name of o.scenarios) reports.push(await runScenario(name, target));
  };
  if (o.mode === 'native') {
    const { startIcsCluster } = await import('@uigniter-demo/ics-native');
    const dataDir = await mkdtemp(join(tmpdir(), 'uigniter-ics-'));
    const cluster = await startIcsCluster({ dataDir });
    try {
      await run(cluster.scenarioTarget(o.timeFactor ?? 1, o.log));
    } finally {
      await cluster.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
    return { mode: 'native', reports };
  }
  const client = o.client;
  if (!client) throw new Error('the microVM mode needs a daemon client');
  o.log('building images (unchanged apps are not rebuilt)');
  await buildIcsImages({ client, appsDir: o.appsDir, log: o.log });
  await removeIcs(client, { volumes: true });
  o.log('booting broker, plant, historian, I/O gateway and two controllers as microVMs');
  try {
    const { timeFactor, ...timings } = VM_TIMINGS;
    const { addresses } = await deployIcs({ client, appsDir: o.appsDir, log: o.log, ...timings });
    await run(icsVmTarget(client, addresses, o.timeFactor ?? timeFactor, o.log));
  } finally {
    if (!o.keep) {
      await removeIcs(client, { volumes: true });
      o.log('removed the example\'s VMs, service and volumes');
    }
  }
  return { mode: 'vm', reports };
}

/** One line per scenario: what the issue asks the report to say. */
export function reportTable(reports: ScenarioReport[]): { header: string[]; rows: (string | number)[][] } {
  const ms = (v: number | null): string => (v === null ? '-' : `${Math.round(v)}`);
  return {
    header: ['scenario', 'result', 'loop p50 ms', 'p99 ms', 'deadline', 'misses', 'alarms (handled ms, woke)', 'failover ms', 'within limits'],
    rows: reports.map((r) => [
      r.scenario,
      r.passed ? 'passed' : 'FAILED',
      r.loopLatencyMs.p50,
      r.loopLatencyMs.p99,
      r.deadlineMs,
      r.deadlineMisses,
      r.alarms.length === 0 ? '-' : r.alarms.map((a) => `${a.kind} ${ms(a.handledMs)}${a.wokeFromZero ? ' from 0' : ''}`).join(', '),
      ms(r.failoverMs),
      r.withinLimits ? 'yes' : 'NO',
    ]),
  };
}

export function isScenario(name: string): name is ScenarioName {
  return (SCENARIOS as readonly string[]).includes(name);
}
