import { join } from 'node:path';
import { makeSamplePng } from '@uigniter-demo/common/sample-png';
import type { RunBody, UigniterClient, VmView } from '../client/client.js';
import { comparePixels } from './pipeline-check.js';
import { MasterClient } from './master-client.js';

/** The modular application as microVMs: which images, which VMs, how they are wired. */
export const SERVICES = ['kvstore', 'db', 'storage', 'master', 'worker'] as const;
export const CORE_VMS = ['kvstore', 'db', 'storage', 'master'] as const;
export const DB_VOLUME = 'demo-db';
export const STORAGE_VOLUME = 'demo-storage';

export interface DemoAppOptions {
  client: UigniterClient;
  appsDir: string;
  workers: number;
  /** Host port on 127.0.0.1 published to the master's 9003. */
  masterPort: number;
  leaseSec: number;
  log: (line: string) => void;
  /** Extra env for workers (tests slow them down). */
  workerEnv?: Record<string, string>;
}

export function workerName(i: number): string {
  return `worker-${i}`;
}

/** Builds the five images (unchanged apps are not rebuilt). */
export async function buildDemoImages(o: Pick<DemoAppOptions, 'client' | 'appsDir' | 'log'>): Promise<void> {
  for (const s of SERVICES) {
    const started = Date.now();
    const img = await o.client.buildImage(join(o.appsDir, s), s);
    o.log(`image ${img.name}:${img.tag} ${img.digest.slice(7, 19)} (${Date.now() - started} ms)`);
  }
}

/** Removes the demo's VMs (and, when asked, its volumes) left from an earlier run. */
export async function removeDemo(client: UigniterClient, opts: { volumes: boolean }): Promise<void> {
  const names = new Set<string>(CORE_VMS);
  for (const vm of await client.list()) {
    if (names.has(vm.name) || /^worker-\d+$/.test(vm.name)) await client.remove(vm.id, { force: true });
  }
  if (opts.volumes) {
    for (const v of await client.volumes()) if (v.name === DB_VOLUME || v.name === STORAGE_VOLUME) await client.removeVolume(v.name);
  }
}

export function specs(o: DemoAppOptions): { core: RunBody[]; workers: RunBody[] } {
  const lease = String(o.leaseSec);
  return {
    core: [
      { image: 'kvstore', name: 'kvstore' },
      { image: 'db', name: 'db', env: { LEASE_SEC: lease }, volumes: [{ name: DB_VOLUME, mountPath: '/data', sizeMiB: 64 }] },
      { image: 'storage', name: 'storage', volumes: [{ name: STORAGE_VOLUME, mountPath: '/data', sizeMiB: 256 }] },
      { image: 'master', name: 'master', ports: [{ hostPort: o.masterPort, guestPort: 9003 }] },
    ],
    workers: Array.from({ length: o.workers }, (_, i) => ({
      image: 'worker',
      name: workerName(i + 1),
      env: { LEASE_SEC: lease, ...(o.workerEnv ?? {}) },
    })),
  };
}

/** Boots the services, then the workers, each VM answering before the call returns. */
export async function bootDemo(o: DemoAppOptions): Promise<VmView[]> {
  const { core, workers } = specs(o);
  const started = Date.now();
  const boot = async (body: RunBody): Promise<VmView> => {
    const vm = await o.client.run(body);
    o.log(`vm ${vm.name.padEnd(9)} ${vm.ip}  ready in ${((vm.bootMs ?? 0) / 1000).toFixed(2)} s`);
    return vm;
  };
  const vms = await Promise.all(core.map(boot));
  vms.push(...(await Promise.all(workers.map(boot))));
  o.log(`${vms.length} microVMs up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return vms;
}

export interface BatchResult {
  tasks: number;
  seconds: number;
  perWorker: Record<string, number>;
  mismatches: string[];
}

/** Uploads `count` generated PNGs, waits for every task and checks every result pixel by pixel. */
export async function processBatch(master: MasterClient, count: number, o: { log: (l: string) => void; seed?: number; size?: number; timeoutMs?: number }): Promise<BatchResult> {
  const size = o.size ?? 48;
  const inputs = Array.from({ length: count }, (_, i) => makeSamplePng((o.seed ?? 1) + i, size, size));
  const before = await master.stats();
  const started = performance.now();
  const ids: number[] = [];
  for (const png of inputs) ids.push(await master.upload(png));
  o.log(`uploaded ${count} images (${size}x${size} PNG) as tasks ${ids[0]}..${ids.at(-1)}`);
  const tasks = await master.waitAll(ids, o.timeoutMs ?? 300_000, (n) => o.log(`  ${n}/${count} done`));
  const seconds = (performance.now() - started) / 1000;
  const mismatches: string[] = [];
  for (let i = 0; i < ids.length; i++) {
    const t = tasks[i]!;
    if (t.state !== 'done') {
      mismatches.push(`task ${t.id} ${t.state}`);
      continue;
    }
    const diff = comparePixels(inputs[i]!, await master.result(t.id));
    if (diff) mismatches.push(`task ${t.id}: ${diff}`);
  }
  const after = await master.stats();
  const perWorker: Record<string, number> = {};
  for (const [w, n] of Object.entries(after.byWorker)) {
    const d = n - (before.byWorker[w] ?? 0);
    if (d > 0) perWorker[w] = d;
  }
  return { tasks: count, seconds, perWorker, mismatches };
}
