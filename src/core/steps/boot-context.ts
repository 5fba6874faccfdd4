import type { ConsoleTail } from '../../guest/console-tail.js';
import type { BootVolume } from '../guest-boot.js';
import type { ImageManifest, VmRecord } from '../models.js';
import type { Clock, ImageCatalog, LaunchSpec, NetworkLease, StateStore, Vmm, VmmProcess, VmNetwork, VolumeDisks } from '../ports.js';

export interface BootDeps {
  store: StateStore;
  images: ImageCatalog;
  vmm: Vmm;
  network: VmNetwork;
  volumes: VolumeDisks;
  clock: Clock;
  readyTimeoutMs: number;
  log: (msg: string, fields?: Record<string, unknown>) => void;
  /** Saves the record after a step changed it. */
  save: (vm: VmRecord) => void;
}

/** performance.now() at points of a boot, for Server-Timing and benchmarks. */
export interface BootMarks {
  vmmStart?: number;
  vmmLaunched?: number;
  ready?: number;
}

/** Everything one boot of a VM builds up, step by step; undo reads it to take it down. */
export interface BootContext {
  deps: BootDeps;
  vm: VmRecord;
  image: ImageManifest;
  runDir: string;
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

export function newBootContext(deps: BootDeps, vm: VmRecord, runDir: string, cancel: AbortSignal, marks: BootMarks = {}): BootContext {
  return {
    deps,
    vm,
    image: vm.manifest,
    runDir,
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
