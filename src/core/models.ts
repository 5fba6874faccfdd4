import type { AutoscaleSettings } from './autoscale/autoscale-settings.js';

/** Plain data of the domain. No behaviour here; see vm-state.ts for the state machine. */

export type ReadyCheck =
  | { kind: 'none' }
  | { kind: 'tcp'; port: number }
  | { kind: 'http'; port: number; path: string };

export interface ImageLayerRef {
  /** "sha256:<hex>" content digest; the guest finds the disk by it. */
  id: string;
  role: 'app' | 'runtime';
  size: number;
}

export interface ImageManifest {
  schemaVersion: 1;
  name: string;
  tag: string;
  /** Digest of everything that defines the image (layers, kernel, initrd, config). */
  digest: string;
  createdAt: string;
  kernel: { id: string };
  initrd: { id: string };
  /** Top layer first. */
  layers: ImageLayerRef[];
  runtime: { kind: 'node'; version: string } | { kind: 'static' };
  entrypoint: string[];
  args: string[];
  env: Record<string, string>;
  workdir: string;
  vcpus: number;
  memMiB: number;
  minMemMiB: number;
  ports: number[];
  ready: ReadyCheck;
  source: { dir: string };
}

export interface PortMapping {
  hostPort: number;
  guestPort: number;
  /** Host address to listen on; loopback unless said otherwise. */
  hostAddr: string;
  protocol: 'tcp';
}

export interface VolumeMount {
  name: string;
  mountPath: string;
  sizeMiB: number;
  readOnly: boolean;
}

/** What a user asked for; kept as given so a stopped VM starts again the same way. */
export interface VmSpec {
  image: string;
  /** The VMM driver it runs on (a name in the daemon's driver registry). */
  driver: string;
  name: string;
  vcpus: number;
  memMiB: number;
  /** Replaces the image's args when set. */
  args: string[] | null;
  env: Record<string, string>;
  ports: PortMapping[];
  volumes: VolumeMount[];
  /** Graceful stop deadline before the VM is forced off. */
  stopTimeoutMs: number;
  /**
   * The root is the image alone: no writable layer over it, so writes to it fail (EROFS);
   * /tmp, /run, /dev/shm and volumes stay writable. Absent (records made before it, and
   * every writable VM, so their template keys stay as they were) means false.
   */
  readOnly?: boolean;
  /**
   * The bound of the VMM's translation cache under TCG, MiB (absent: the driver's default;
   * KVM has no such cache). A busy guest whose code outgrows the cache has it flushed and
   * translated again and again; an idle one fills what it runs, so a small bound keeps it
   * small. Not part of the template key: the cache is the VMM's, not the guest's.
   */
  codeCacheMiB?: number;
}

export type VmState = 'creating' | 'booting' | 'running' | 'paused' | 'stopping' | 'suspended' | 'stopped' | 'failed';

/** How the VM's current run began: a cold boot, a restore of a template or of a named snapshot, or a warm pool's spare handed out. */
export type VmOrigin = 'cold' | 'template' | 'snapshot' | 'pool';

/** How a create asks to boot: from a template when one fits (auto), or never (cold), or only from one (template). */
export type BootMode = 'auto' | 'cold' | 'template';

export interface VmRecord {
  id: string;
  name: string;
  spec: VmSpec;
  state: VmState;
  /** The image as it was when the VM was created: a rebuild of the image never changes a VM silently. */
  manifest: ImageManifest;
  ip: string | null;
  mac: string | null;
  tap: string | null;
  pid: number | null;
  /** How many times it has booted. */
  boots: number;
  /** Where this boot's output starts in the console log (the log is kept across boots). */
  consoleOffset: number;
  exitCode: number | null;
  error: string | null;
  bootMs: number | null;
  origin: VmOrigin;
  /** The snapshot or template this run was restored from (its memory file backs the VM). */
  restoredFrom: string | null;
  /** While suspended (and while running from that suspension): the saved state in the VM's directory. */
  suspendedState: SavedState | null;
  /** The warm pool it is a spare of (paused, waiting to be handed out); null once handed out. */
  pool: string | null;
  /** The service it is a replica of. */
  service: string | null;
  createdAt: string;
  updatedAt: string;
  stateChangedAt: string;
  startedAt: string | null;
  readyAt: string | null;
  stoppedAt: string | null;
}

export interface VolumeRecord {
  name: string;
  sizeMiB: number;
  /** ext4 UUID, 32 hex digits: the guest finds the disk by it. */
  uuid: string;
  createdAt: string;
  /** VM id that has it attached, if any. */
  attachedTo: string | null;
}

/** Memory and device state a driver saved (mirrors the Vmm port's VmmSnapshot). */
export interface SavedState {
  dir: string;
  memory: 'file' | 'stream';
  bytes: number;
  compat: string;
  /** The config drive the VM booted with: a restore attaches the same disk. */
  configDrive: string;
  /** Whether the app's Node hooks acknowledged the freeze (its randomness renews in clones). */
  appQuiesced: boolean;
}

export type SnapshotKind = 'snapshot' | 'template';

/** A named snapshot of a running VM, or a template the daemon made for a VM spec. */
export interface SnapshotRecord {
  name: string;
  kind: SnapshotKind;
  /** The VM it was taken of (it may be gone since). */
  source: { id: string; name: string };
  /** The spec clones run with (image, driver, vCPUs, memory, env, args); ports and volumes are not carried. */
  spec: VmSpec;
  manifest: ImageManifest;
  state: SavedState;
  /** For templates: the key of (image digest, kernel, vCPUs, memory, env, args, driver). */
  templateKey: string | null;
  createdAt: string;
}

/** performance.now() at points of a boot, for Server-Timing and benchmarks. */
export interface BootMarks {
  vmmStart?: number;
  vmmLaunched?: number;
  /** A pool's hand-out: its spare claimed (name saved), resumed, its identity renewed. */
  claimed?: number;
  resumed?: number;
  renewed?: number;
  ready?: number;
}

/** How a pool warms a spare: `requests` HTTP GETs of `path` (TCP connects when null) to `port`. */
export interface PoolWarm {
  port: number | null;
  path: string | null;
  requests: number;
}

/** What a warm pool keeps ready: VMs of one spec, booted (or restored) and paused. */
export interface PoolRecord {
  id: string;
  /** The spec its spares run with (their names are the pool's own). */
  spec: VmSpec;
  /** The image digest the spec was checked against; a rebuilt image refills the pool. */
  imageDigest: string;
  size: number;
  /** Requests each spare is sent before it is paused (see core/pools/warm-up.ts). */
  warm: PoolWarm;
  /** The service it belongs to, when a service made it. */
  service: string | null;
  createdAt: string;
}

/** How a service checks a replica: an HTTP GET of a path (2xx/3xx) or a TCP connect to its port. */
export interface Probe {
  kind: 'http' | 'tcp';
  path: string | null;
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive failures that count as failed. */
  failures: number;
}

export type RestartPolicy = 'always' | 'on-failure' | 'never';

/** What a user asked of a service, checked. */
export interface ServiceSpec {
  name: string;
  /** The replicas' VM spec (their names are the service's). */
  vm: VmSpec;
  /** The guest port the app serves on (the gateway forwards to it); null: no gateway. */
  port: number | null;
  replicas: { min: number; max: number };
  health: { readiness: Probe | null; liveness: Probe | null };
  restart: RestartPolicy;
  /** Autoscale settings (see core/autoscale/autoscale-settings.ts), or null: desired is set by hand. */
  autoscale: AutoscaleSettings | null;
  pool: { size: number; warm: { path?: string; requests?: number } } | null;
  gateway: { hostAddr: string; hostPort: number | null };
  /**
   * What a scale-down does with a running replica: 'remove' it (its app is stopped
   * gracefully), or 'pause' it and keep it for the next scale-up, which resumes it before
   * starting any other. Records made before the field was added have none: 'remove'.
   */
  scaleDown?: ScaleDown;
}

export type ScaleDown = 'remove' | 'pause';

export interface ServiceRecord {
  spec: ServiceSpec;
  /** Replicas wanted now (by hand, or the autoscaler's last decision). */
  desired: number;
  poolId: string | null;
  /** The host port its gateway listens on, kept across restarts. */
  gatewayPort: number | null;
  createdAt: string;
  updatedAt: string;
}

export interface ServiceEvent {
  id: number;
  service: string;
  at: string;
  /** created, scaled, replica-started, replica-ready, replica-failed, restart, liveness-failed, replaced, woke, ... */
  kind: string;
  message: string;
  data: Record<string, unknown> | null;
}
