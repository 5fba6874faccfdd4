import type { ConsoleTail } from '../../guest/console-tail.js';
import type { BootVolume } from '../guest-boot.js';
import type { BootMarks, ImageManifest, SavedState, VmOrigin, VmRecord } from '../models.js';

export type { BootMarks };
import type { Clock, GuestAddress, ImageCatalog, LaunchSpec, NicAttachment, NetworkLease, StateStore, Vmm, VmmProcess, VmmRegistry, VmNetwork, VolumeDisks } from '../ports.js';

export interface BootDeps {
  store: StateStore;
  images: ImageCatalog;
  drivers: VmmRegistry;
  network: VmNetwork;
  volumes: VolumeDisks;
  clock: Clock;
  readyTimeoutMs: number;
  log: (msg: string, fields?: Record<string, unknown>) => void;
  /** Saves the record after a step changed it. */
  save: (vm: VmRecord) => void;
}


/** Where a restore takes memory and device state from. */
export interface RestoreSource {
  /** The origin the VM's record shows (a resumed suspension keeps the one it had). */
  origin: VmOrigin;
  /** The snapshot or template name (null when a suspended VM resumes its own state). */
  snapshot: string | null;
  state: SavedState;
}

/** Everything one boot of a VM builds up, step by step; undo reads it to take it down. */
export interface BootContext {
  deps: BootDeps;
  /** The VM's driver, from its spec. */
  vmm: Vmm;
  vm: VmRecord;
  image: ImageManifest;
  runDir: string;
  /** Set for a restore; null for a cold boot. */
  restore: RestoreSource | null;
  lease: NetworkLease | null;
  leaseIsNew: boolean;
  volumes: BootVolume[];
  createdVolumes: string[];
  tap: string | null;
  launch: LaunchSpec | null;
  process: VmmProcess | null;
  tail: ConsoleTail | null;
  unpublish: (() => Promise<void>) | null;
  /** Aborted when a stop or delete arrives while the VM is still booting. */
  cancel: AbortSignal;
  launchedAt: number | null;
  marks: BootMarks;
}

export function newBootContext(
  deps: BootDeps,
  vm: VmRecord,
  runDir: string,
  cancel: AbortSignal,
  marks: BootMarks = {},
  restore: RestoreSource | null = null,
): BootContext {
  return {
    deps,
    vmm: deps.drivers.get(vm.spec.driver),
    vm,
    image: vm.manifest,
    runDir,
    restore,
    lease: null,
    leaseIsNew: false,
    volumes: [],
    createdVolumes: [],
    tap: null,
    launch: null,
    process: null,
    tail: null,
    unpublish: null,
    cancel,
    launchedAt: null,
    marks,
  };
}

/** The NIC and address a booted or restored VM gets: its tap, its lease. */
export function tapNetwork(ctx: BootContext): { nic: NicAttachment; address: GuestAddress } {
  const lease = ctx.lease!;
  return {
    nic: { kind: 'tap', tap: ctx.tap!, mac: lease.mac, netns: ctx.deps.network.netns },
    address: { ip: lease.ip, prefix: lease.prefix, gateway: lease.gateway, dns: lease.dns },
  };
}
