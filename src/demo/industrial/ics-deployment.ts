import { join } from 'node:path';
import type { RunBody, UigniterClient, VmView } from '../../client/client.js';

/** The industrial example as microVMs: its images, VMs, volumes and the on-demand alarm service. */
export const ICS_APPS = ['ics-broker', 'ics-plant', 'ics-historian', 'ics-iogateway', 'ics-controller', 'ics-alarm'] as const;
export const ICS_VMS = ['broker', 'plant', 'historian', 'iogateway', 'controller-a', 'controller-b'] as const;
export type IcsVmName = (typeof ICS_VMS)[number];
/** The alarm handler: a service at zero replicas, woken by the historian's pending count. */
export const ALARM_SERVICE = 'alarm';
export const ICS_VOLUMES = ['ics-broker', 'ics-historian', 'ics-controller-a', 'ics-controller-b'] as const;

/** The ports the apps listen on in their VMs (their package.json `uigniter` fields). */
export const ICS_PORTS = { plant: 9100, modbus: 502, broker: 9101, mqtt: 1883, iogateway: 9102, controller: 9103, historian: 9104, alarm: 9105 } as const;

export interface IcsDeployOptions {
  client: UigniterClient;
  appsDir: string;
  log: (line: string) => void;
  /** Plant seed (default 42). */
  seed?: number;
  /** The plant's loop deadline (ms); emulated guests need more than the native 250. */
  deadlineMs?: number;
  /** The plant's step and the gateway's poll (ms; native 100). */
  periodMs?: number;
  /** The controllers' heartbeat and the standby's takeover after silence (ms; native 200 and 1000). */
  heartbeatMs?: number;
  takeoverMs?: number;
  /** Spares of the alarm handler kept booted and paused (default 1). */
  alarmPool?: number;
}

/** Builds the six images (unchanged apps are not rebuilt). */
export async function buildIcsImages(o: Pick<IcsDeployOptions, 'client' | 'appsDir' | 'log'>): Promise<void> {
  for (const app of ICS_APPS) {
    const started = Date.now();
    const img = await o.client.buildImage(join(o.appsDir, app), app);
    o.log(`image ${img.name}:${img.tag} ${img.digest.slice(7, 19)} (${Date.now() - started} ms)`);
  }
}

/** Removes the example's service, VMs and (when asked) volumes left from an earlier run. */
export async function removeIcs(client: UigniterClient, opts: { volumes: boolean }): Promise<void> {
  if ((await client.services()).some((s) => s.name === ALARM_SERVICE)) await client.removeService(ALARM_SERVICE);
  const names = new Set<string>(ICS_VMS);
  for (const vm of await client.list()) if (names.has(vm.name)) await client.remove(vm.id, { force: true });
  if (opts.volumes) {
    const ours = new Set<string>(ICS_VOLUMES);
    for (const v of await client.volumes()) if (ours.has(v.name)) await client.removeVolume(v.name);
  }
}

const volume = (name: string): RunBody['volumes'] => [{ name, mountPath: '/data', sizeMiB: 32 }];

/**
 * The translation cache each of the example's VMs asks for under TCG, MiB. They run all the
 * time, and at the default 32 their code outgrows it: measured over the normal scenario's
 * 60 s, the six used 127% of a core at 32 (the cache flushed and translated again), 87% at
 * 64 and 82% at 128, and the loop's p99 went from 826 ms to 447 and 281.
 */
export const ICS_CODE_CACHE_MIB = 64;

/** The VMs, in the order they come up (each group waits for the one before). */
export function icsSpecs(o: Pick<IcsDeployOptions, 'seed' | 'deadlineMs' | 'periodMs' | 'heartbeatMs' | 'takeoverMs'>): RunBody[][] {
  const period = { CONTROL_PERIOD_MS: String(o.periodMs ?? 100) };
  const liveness = { HEARTBEAT_MS: String(o.heartbeatMs ?? 200), TAKEOVER_MS: String(o.takeoverMs ?? 1000) };
  const vm = (body: RunBody): RunBody => ({ ...body, codeCacheMiB: ICS_CODE_CACHE_MIB });
  return [
    [
      vm({ image: 'ics-broker', name: 'broker', volumes: volume('ics-broker') }),
      vm({ image: 'ics-plant', name: 'plant', env: { SEED: String(o.seed ?? 42), DEADLINE_MS: String(o.deadlineMs ?? 250), ...period } }),
    ],
    [
      vm({ image: 'ics-historian', name: 'historian', volumes: volume('ics-historian') }),
      vm({ image: 'ics-iogateway', name: 'iogateway', env: period }),
    ],
    [
      vm({ image: 'ics-controller', name: 'controller-a', env: { CONTROLLER_ID: 'a', ROLE_PRIORITY: '1', ...liveness }, volumes: volume('ics-controller-a') }),
      vm({ image: 'ics-controller', name: 'controller-b', env: { CONTROLLER_ID: 'b', ROLE_PRIORITY: '2', ...liveness }, volumes: volume('ics-controller-b') }),
    ],
  ];
}

/** Where the host reaches the example's services (guest addresses, through the daemon's route). */
export interface IcsAddresses {
  plant: string;
  broker: string;
  historian: string;
  iogateway: string;
  controllers: { a: string; b: string };
}

export function addressesOf(vms: VmView[]): IcsAddresses {
  const ip = (name: IcsVmName): string => {
    const vm = vms.find((v) => v.name === name);
    if (!vm?.ip) throw new Error(`VM ${name} has no address`);
    return vm.ip;
  };
  return {
    plant: ip('plant'),
    broker: ip('broker'),
    historian: ip('historian'),
    iogateway: ip('iogateway'),
    controllers: { a: ip('controller-a'), b: ip('controller-b') },
  };
}

/**
 * Boots the example: broker and plant, then historian and I/O gateway, then the two
 * controllers, each VM ready before the next group; then the alarm handler as a service
 * that runs once (the deploy sees it start and pass its readiness check) and is then
 * left to its autoscaler at zero replicas, woken when the historian counts an unhandled
 * alarm; a woken handler asks the historian for the pending alarms.
 */
export async function deployIcs(o: IcsDeployOptions): Promise<{ vms: VmView[]; addresses: IcsAddresses }> {
  const started = Date.now();
  const vms: VmView[] = [];
  for (const group of icsSpecs(o)) {
    const up = await Promise.all(group.map((body) => o.client.run(body)));
    for (const vm of up) o.log(`vm ${vm.name.padEnd(12)} ${vm.ip}  ready in ${((vm.bootMs ?? 0) / 1000).toFixed(2)} s (${vm.origin})`);
    vms.push(...up);
  }
  const addresses = addressesOf(vms);
  await o.client.createService({
    name: ALARM_SERVICE,
    image: 'ics-alarm',
    // Its HTTP port: the controller's readiness check (and a gateway, unused here).
    port: ICS_PORTS.alarm,
    replicas: { min: 1, max: 1 },
    pool: { size: o.alarmPool ?? 1 },
    autoscale: {
      metric: 'http-json',
      url: `http://${addresses.historian}:${ICS_PORTS.historian}/alarms/pending`,
      field: 'pending',
      target: 1,
      scaleToZeroAfterMs: 5000,
      stableWindowMs: 6000,
      panicWindowMs: 1000,
      cooldownMs: 1000,
    },
  });
  await waitFor(async () => (await o.client.getService(ALARM_SERVICE)).status.ready === 1, 120_000, 'the alarm handler to start once');
  await o.client.updateService(ALARM_SERVICE, { replicas: { min: 0, max: 1 } });
  await waitFor(async () => (await o.client.getService(ALARM_SERVICE)).status.running === 0, 120_000, 'the alarm handler to scale to zero');
  // The pool boots its spare in the background: wait for it, so the scenarios do not share
  // the host's cores with a boot (and the wake-up they measure is the pool's).
  const poolId = (await o.client.getService(ALARM_SERVICE)).pool?.id;
  if (poolId) await waitFor(async () => (await o.client.pools()).some((p) => p.id === poolId && p.ready.length >= p.size && p.starting.length === 0), 180_000, "the alarm handler's spare");
  o.log(`alarm handler: a service at 0 replicas (pool of ${o.alarmPool ?? 1}), woken by http://${addresses.historian}:${ICS_PORTS.historian}/alarms/pending`);
  o.log(`${vms.length} microVMs up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { vms, addresses };
}

export async function waitFor(ok: () => Promise<boolean>, timeoutMs: number, what: string, everyMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ok().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
