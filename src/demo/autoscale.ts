import { setTimeout as sleep } from 'node:timers/promises';
import type { TaskStats } from '@uigniter-demo/common/task-record';
import { ApiError, type ScalePointView, type ServiceEventView, type ServiceView, type UigniterClient } from '../client/client.js';
import { processBatch, type BatchResult } from './demo-app.js';
import type { MasterClient } from './master-client.js';

/** The autoscaled workers: one service whose replicas follow the db's backlog. */
export const WORKER_SERVICE = 'worker';
/** The worker's port (it serves /healthz and /stats there): readiness is checked on it. */
export const WORKER_PORT = 9004;
/**
 * The db's field the workers scale on: tasks not done yet, waiting or held. Scaling on the
 * waiting ones alone removed workers in the middle of their last tasks (nothing waited for
 * 5 s while three were still being worked on), and bench/autoscale's bursts found it.
 */
export const BACKLOG_FIELD = 'pending';

export interface WorkerServiceOptions {
  client: UigniterClient;
  /** The db VM's IP: the daemon reads the backlog from http://<ip>:9001/stats on the host. */
  dbIp: string;
  maxWorkers: number;
  leaseSec: number;
  /**
   * Pending tasks per worker (default 2: one being worked on, one waiting). At 1 the
   * workers came sooner but stayed longer: bench/autoscale with bursts measured 0.99x the
   * fixed workers' VM-seconds at 1, 0.76x at 2, for 1.45x and 1.29x their makespan.
   */
  target?: number;
  /** Pre-booted workers kept aside (0: none). */
  poolSize?: number;
  /** 'pause': a scale-down pauses workers, and the next scale-up resumes them (warm) first. */
  scaleDown?: 'remove' | 'pause';
  scaleToZeroAfterMs?: number;
  stableWindowMs?: number;
  panicWindowMs?: number;
  workerEnv?: Record<string, string>;
}

/** The API's views, under the names this demo reads them by. */
export type ScalePoint = ScalePointView;
export type ServiceEvent = ServiceEventView;
type ServiceStatus = ServiceView;

export function backlogUrl(dbIp: string): string {
  return `http://${dbIp}:9001/stats`;
}

export async function removeWorkerService(client: UigniterClient): Promise<boolean> {
  try {
    await client.raw('DELETE', `/services/${WORKER_SERVICE}`);
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return false;
    throw e;
  }
}

/** Creates the `worker` service: min 0, max N, autoscaled on the db's backlog. */
export async function createWorkerService(o: WorkerServiceOptions): Promise<void> {
  await removeWorkerService(o.client);
  await o.client.raw('POST', '/services', {
    name: WORKER_SERVICE,
    image: 'worker',
    port: WORKER_PORT,
    env: { LEASE_SEC: String(o.leaseSec), ...(o.workerEnv ?? {}) },
    replicas: { min: 0, max: o.maxWorkers },
    health: { readiness: { http: { path: '/healthz' }, intervalMs: 500 } },
    autoscale: {
      metric: 'http-json',
      url: backlogUrl(o.dbIp),
      field: BACKLOG_FIELD,
      target: o.target ?? 2,
      scaleToZeroAfterMs: o.scaleToZeroAfterMs ?? 5000,
      stableWindowMs: o.stableWindowMs ?? 10_000,
      panicWindowMs: o.panicWindowMs ?? 2000,
      cooldownMs: 1000,
    },
    ...(o.poolSize ? { pool: { size: o.poolSize } } : {}),
    ...(o.scaleDown ? { scaleDown: o.scaleDown } : {}),
  });
}

export async function serviceStatus(client: UigniterClient): Promise<ServiceStatus> {
  return client.raw<ServiceStatus>('GET', `/services/${WORKER_SERVICE}`);
}

export async function serviceMetrics(client: UigniterClient, since: number): Promise<ScalePoint[]> {
  return (await client.raw<{ points: ScalePoint[] }>('GET', `/services/${WORKER_SERVICE}/metrics?since=${Math.floor(since)}`)).points;
}

export async function serviceEvents(client: UigniterClient): Promise<ServiceEvent[]> {
  return (await client.raw<{ events: ServiceEvent[] }>('GET', `/services/${WORKER_SERVICE}/events`)).events;
}

async function dbStats(dbIp: string): Promise<TaskStats | null> {
  try {
    const res = await fetch(backlogUrl(dbIp), { signal: AbortSignal.timeout(3000) });
    return (await res.json()) as TaskStats;
  } catch {
    return null;
  }
}

export interface TimelineRow {
  /** s since the timeline started */
  elapsed: number;
  backlog: number | null;
  leased: number | null;
  done: number | null;
  desired: number;
  ready: number;
  running: number;
}

/** Samples the backlog and the service every `everyMs`; logs a line on each change (and at least every 5 s). */
export class Timeline {
  readonly rows: TimelineRow[] = [];
  private stopped = false;
  private loop: Promise<void> | null = null;
  private readonly t0 = performance.now();
  get startedAt(): number {
    return this.t0;
  }
  private doneBase = 0;

  constructor(
    private readonly client: UigniterClient,
    private readonly dbIp: string,
    private readonly log: (l: string) => void,
    private readonly everyMs = 1000,
  ) {}

  async start(): Promise<void> {
    this.doneBase = (await dbStats(this.dbIp))?.done ?? 0;
    this.log('  elapsed  backlog  leased  desired  ready  running  done');
    this.loop = this.run();
  }

  /** The newest row. */
  last(): TimelineRow | undefined {
    return this.rows.at(-1);
  }

  async sample(): Promise<TimelineRow> {
    const [stats, svc] = await Promise.all([dbStats(this.dbIp), serviceStatus(this.client).catch(() => null)]);
    const row: TimelineRow = {
      elapsed: (performance.now() - this.t0) / 1000,
      backlog: stats?.ready ?? null,
      leased: stats?.leased ?? null,
      done: stats ? stats.done - this.doneBase : null,
      desired: svc?.status.desired ?? 0,
      ready: svc?.status.ready ?? 0,
      running: svc?.status.running ?? 0,
    };
    const prev = this.rows.at(-1);
    this.rows.push(row);
    const changed = !prev || (['backlog', 'leased', 'done', 'desired', 'ready', 'running'] as const).some((k) => prev[k] !== row[k]);
    if (changed || row.elapsed - this.lastLogged >= 5) {
      this.lastLogged = row.elapsed;
      const f = (v: number | null, w: number): string => String(v ?? '?').padStart(w);
      this.log(`  ${row.elapsed.toFixed(1).padStart(6)}s  ${f(row.backlog, 7)}  ${f(row.leased, 6)}  ${f(row.desired, 7)}  ${f(row.ready, 5)}  ${f(row.running, 7)}  ${f(row.done, 4)}`);
    }
    return row;
  }
  private lastLogged = -Infinity;

  private async run(): Promise<void> {
    while (!this.stopped) {
      const started = performance.now();
      await this.sample().catch(() => undefined);
      await sleep(Math.max(0, this.everyMs - (performance.now() - started)));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

export interface AutoscaleRunResult {
  batch: BatchResult;
  /** The most ready workers seen while the batch ran. */
  peakReady: number;
  peakDesired: number;
  /** s from the last task done until the service was back to zero; null if it was not within the timeout. */
  backToZeroSec: number | null;
  /** The db's stats after the batch (for exactly-once checks). */
  statsBefore: TaskStats;
  statsAfter: TaskStats;
  /** The service's autoscaler series over the run. */
  points: ScalePoint[];
  timeline: TimelineRow[];
}

/**
 * Uploads the batch with the worker service at zero, prints a timeline while it runs, checks
 * every result, then waits for the service to be back at zero.
 */
export async function runAutoscaledBatch(o: {
  client: UigniterClient;
  master: MasterClient;
  dbIp: string;
  images: number;
  log: (l: string) => void;
  seed?: number;
  size?: number;
  batchTimeoutMs?: number;
  zeroTimeoutMs?: number;
}): Promise<AutoscaleRunResult> {
  const since = Date.now();
  const statsBefore = (await dbStats(o.dbIp)) ?? (await o.master.stats());
  const timeline = new Timeline(o.client, o.dbIp, o.log);
  await timeline.start();
  let batch: BatchResult;
  try {
    // processBatch's own per-task progress lines would drown the timeline: keep only its summary lines.
    batch = await processBatch(o.master, o.images, {
      log: (l) => (/^\s+\d+\/\d+ done$/.test(l) ? undefined : o.log(`  ${l}`)),
      ...(o.seed !== undefined ? { seed: o.seed } : {}),
      ...(o.size !== undefined ? { size: o.size } : {}),
      timeoutMs: o.batchTimeoutMs ?? 600_000,
    });
  } catch (e) {
    await timeline.stop();
    throw e;
  }
  // The last task done: the first sample that saw all of them (the pixel checks come after it).
  const lastDoneRow = timeline.rows.find((r) => r.done !== null && r.done >= o.images);
  const batchEnd = lastDoneRow ? timeline.startedAt + lastDoneRow.elapsed * 1000 : performance.now();
  o.log(`  batch done in ${batch.seconds.toFixed(1)} s; waiting for the workers to go back to zero`);
  let backToZeroSec: number | null = null;
  const deadline = Date.now() + (o.zeroTimeoutMs ?? 120_000);
  while (Date.now() < deadline) {
    const r = timeline.last();
    if (r && r.desired === 0 && r.running === 0 && r.ready === 0) {
      backToZeroSec = (timeline.startedAt + r.elapsed * 1000 - batchEnd) / 1000;
      break;
    }
    await sleep(250);
  }
  await timeline.stop();
  const statsAfter = (await dbStats(o.dbIp)) ?? (await o.master.stats());
  const points = await serviceMetrics(o.client, since).catch(() => []);
  const rows = timeline.rows;
  return {
    batch,
    peakReady: Math.max(0, ...rows.map((r) => r.ready), ...points.map((p) => p.ready)),
    peakDesired: Math.max(0, ...rows.map((r) => r.desired), ...points.map((p) => p.desired)),
    backToZeroSec,
    statsBefore,
    statsAfter,
    points,
    timeline: rows,
  };
}
