/**
 * The ports of the core: what it needs from the world, as interfaces. Adapters
 * (drivers/qemu, drivers/firecracker, network/, images/, state/) implement them; the core
 * never sees a QEMU flag, an `ip` command or SQL.
 */
import type { Duplex } from 'node:stream';
import type { ImageManifest, PoolRecord, ServiceEvent, ServiceRecord, SnapshotKind, SnapshotRecord, VmRecord, VmState, VolumeRecord } from './models.js';

// ---------- VMM driver ----------

export interface DiskAttachment {
  path: string;
  readOnly: boolean;
}

export type NicAttachment =
  | { kind: 'tap'; tap: string; mac: string; netns: string | null }
  | { kind: 'user'; mac: string; forwards: { hostAddr: string; hostPort: number; guestPort: number }[] };

export interface GuestAddress {
  ip: string;
  prefix: number;
  gateway: string;
  /** Name servers, also given to the kernel (ip=...:dns0:dns1, shown in /proc/net/pnp). */
  dns: string[];
}

export interface LaunchSpec {
  vmId: string;
  hostname: string;
  vcpus: number;
  memMiB: number;
  kernel: string;
  initrd: string;
  disks: DiskAttachment[];
  nic: NicAttachment | null;
  /** Configured by the guest kernel from its command line (ip=). */
  address: GuestAddress | null;
  /** Private per-VM directory: sockets, pid file, VMM log. */
  runDir: string;
  /** The serial console, appended to across boots. */
  consoleLog: string;
  /** Show kernel messages on the console. */
  verbose?: boolean;
  /** The translation cache's bound under TCG, MiB (absent: the driver's default). */
  codeCacheMiB?: number;
}

export interface VmmExit {
  code: number | null;
  signal: string | null;
}

export interface VmmProcess {
  readonly pid: number;
  /** Settles when the VMM process is gone, however it ended. */
  readonly exited: Promise<VmmExit>;
  readonly running: boolean;
  /** Asks the guest to shut down (its init turns this into SIGTERM for the app). */
  requestStop(): Promise<void>;
  /** Ends the VM now. */
  kill(): Promise<void>;
  /** Stops the vCPUs; the guest sees no time pass until resume. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /**
   * Saves a paused VM's memory and device state into `dir` (an empty directory the caller
   * made and owns). The VM stays paused. Disks are not copied: the caller copies the
   * writable ones it cares about while the VM is paused.
   */
  saveSnapshot(dir: string): Promise<VmmSnapshot>;
  /** Connects or cuts the NIC's link; a restored VM starts with it cut. */
  setLink(up: boolean): Promise<void>;
  /** Opens the byte channel to the guest agent (our init); one at a time per VM. */
  openAgent(): Promise<Duplex>;
  /** Stops watching the VM and leaves it running (daemon shutdown without stopping VMs). */
  detach(): void;
  /**
   * Bytes the VMM may still add by itself, beyond what it holds now (QEMU under TCG fills
   * its translation cache up to a bound as the guest runs new code); 0 when it has nothing
   * of the kind, null when the process is gone. Admission keeps this room free.
   */
  growthBytes(): Promise<number | null>;
  /** The VMM's translation cache, read from the VMM now; null when it has none (KVM). */
  codeCache(): Promise<CodeCacheStats | null>;
}

/** A VMM's translation cache (QEMU under TCG). */
export interface CodeCacheStats {
  /** What the cache may hold (the VM's codeCacheMiB, or the default). */
  boundMiB: number;
  /** Translated code it holds now. */
  usedMiB: number;
  /**
   * Times it filled up and was emptied since the VMM started. Each one makes the guest's
   * code be translated again: a count that keeps growing while the VM works means the
   * bound is too small for it (it thrashes).
   */
  flushes: number;
}

/**
 * How a snapshot holds guest memory. 'file': the RAM is a file beside the device state,
 * mapped copy-on-write by every restore (clones share its pages); 'stream': the RAM is
 * inside the device state (a VM whose own RAM was a private copy-on-write mapping).
 */
export type SnapshotMemory = 'file' | 'stream';

/** What a driver wrote for a snapshot and needs again to restore it. */
export interface VmmSnapshot {
  /** The directory holding the driver's files. */
  dir: string;
  memory: SnapshotMemory;
  /** Bytes the files take on disk (sparse files count what they allocate). */
  bytes: number;
  /** A restore must run on a driver whose compat() is the same (driver, version, accelerator). */
  compat: string;
}

export interface VmmCapabilities {
  pause: boolean;
  snapshot: boolean;
  tapNetwork: boolean;
  userNetwork: boolean;
  /** virtio-blk disks one VM can have (layers, volumes and the config drive). */
  maxDisks: number;
}

export interface Vmm {
  readonly name: string;
  readonly capabilities: VmmCapabilities;
  /** The address user-mode networking gives a guest (foreground runs), when the driver has it. */
  readonly userNetworkAddress: GuestAddress | null;
  launch(spec: LaunchSpec): Promise<VmmProcess>;
  /**
   * Starts a VM with the devices of `spec` and the memory and device state of `snapshot`.
   * It comes back paused, with its NIC link cut: the caller renews the guest's identity
   * (through the agent) before it lets the guest talk on the network.
   */
  restore(spec: LaunchSpec, snapshot: VmmSnapshot): Promise<VmmProcess>;
  /** What a snapshot taken now must match to be restored here (see VmmSnapshot.compat). */
  compat(spec: LaunchSpec): Promise<string>;
  /** Re-attaches to a VM launched by an earlier process; null when it is not running any more. */
  adopt(vmId: string, pid: number, runDir: string): Promise<VmmProcess | null>;
  /**
   * Ends the driver's VMs under vmsDir that nobody owns (not in `keep`) and removes what it
   * kept for them outside their directories (memory files); returns what it did, to log.
   */
  removeOrphans(vmsDir: string, keep: ReadonlySet<string>): Promise<string[]>;
  /** The exact command launch() would run, for benchmarks and debugging. */
  commandLine(spec: LaunchSpec): Promise<{ command: string; args: string[] }>;
}

/** The drivers a daemon has, by name; a VM's spec names the one it runs on. */
export interface VmmRegistry {
  readonly defaultName: string;
  /** Throws a not-found error naming the field when there is no such driver. */
  get(name: string, field?: string): Vmm;
  names(): string[];
}

// ---------- images ----------

export interface ImageCatalog {
  get(ref: string, field?: string): Promise<ImageManifest>;
  kernelPath(m: ImageManifest): string;
  initrdPath(m: ImageManifest): string;
  layerPath(layer: ImageManifest['layers'][number]): string;
}

export interface ImageRepository extends ImageCatalog {
  list(): Promise<ImageManifest[]>;
  build(dir: string, ref: string): Promise<{ manifest: ImageManifest; unchanged: boolean }>;
  /** Removes an image unless `usage` names a user; then drops layers nothing refers to. */
  remove(ref: string, usage: (m: ImageManifest) => Promise<string | null>, layersInUse: () => Promise<Set<string>>): Promise<ImageManifest>;
}

// ---------- network ----------

export interface NetworkLease {
  ip: string;
  mac: string;
  prefix: number;
  gateway: string;
  dns: string[];
  search: string | null;
}

export interface VmNetwork {
  /** Reserves an address for a VM, or returns the one it already holds. */
  lease(vmId: string): Promise<NetworkLease>;
  release(vmId: string): Promise<void>;
  /**
   * Creates the VM's tap: on the bridge, or off it (`detached`: its guest talks to nobody
   * until `attachTap`, as a restored guest must before its renewal).
   */
  createTap(vmId: string, options?: { detached?: boolean }): Promise<string>;
  deleteTap(tap: string): Promise<void>;
  /** Puts a detached tap on the bridge, pinning its guest's MAC to it. */
  attachTap(tap: string, mac: string): Promise<void>;
  /** Taps that exist now (to find those a crash left behind). */
  listTaps(): Promise<string[]>;
  /** Leases held by VM id (to find those a crash left behind). */
  leasedVmIds(): string[];
  /** Network namespace the VMM must run in, or null. */
  readonly netns: string | null;
  /** Publishes host ports to a guest; returns an undo. */
  publish(vmId: string, ip: string, ports: { hostAddr: string; hostPort: number; guestPort: number }[]): Promise<() => Promise<void>>;
  /** Names VMs resolve each other by. */
  setName(name: string, ip: string | null): void;
  /** A service's name: the addresses of its ready replicas (none: it does not resolve). */
  setServiceAddresses(name: string, ips: string[]): void;
}

export interface IpLease {
  ip: string;
  vmId: string;
  mac: string;
  leasedAt: string;
}

/** Where IP leases persist (the state store), for the network adapter. */
export interface LeaseStore {
  leaseFor(vmId: string): IpLease | null;
  listLeases(): IpLease[];
  /** Takes the first free address of `candidates`, atomically; null when none is free. */
  takeLease(vmId: string, candidates: Iterable<string>, macFor: (ip: string) => string, now: string): IpLease | null;
  lastLeasedIp(): string | null;
  releaseLease(vmId: string): void;
}

// ---------- volumes ----------

export interface VolumeDisks {
  /** Path of the disk file of a volume. */
  pathOf(name: string): string;
  /** Creates an empty ext4 disk with the given filesystem UUID. */
  create(name: string, sizeMiB: number, uuid: string): Promise<string>;
  remove(name: string): Promise<void>;
}

// ---------- state ----------

export interface StateStore {
  insertVm(vm: VmRecord): void;
  updateVm(vm: VmRecord): void;
  deleteVm(id: string): void;
  getVm(idOrName: string): VmRecord | null;
  listVms(filter?: { state?: VmState }): VmRecord[];
  getVolume(name: string): VolumeRecord | null;
  listVolumes(): VolumeRecord[];
  insertVolume(v: VolumeRecord): void;
  updateVolume(v: VolumeRecord): void;
  deleteVolume(name: string): void;
  insertSnapshot(s: SnapshotRecord): void;
  getSnapshot(name: string): SnapshotRecord | null;
  /** The template made for a template key, if any. */
  templateFor(key: string): SnapshotRecord | null;
  listSnapshots(kind?: SnapshotKind): SnapshotRecord[];
  deleteSnapshot(name: string): void;
  insertPool(p: PoolRecord): void;
  updatePool(p: PoolRecord): void;
  getPool(id: string): PoolRecord | null;
  listPools(): PoolRecord[];
  deletePool(id: string): void;
  insertService(s: ServiceRecord): void;
  updateService(s: ServiceRecord): void;
  getService(name: string): ServiceRecord | null;
  listServices(): ServiceRecord[];
  deleteService(name: string): void;
  addServiceEvent(e: Omit<ServiceEvent, 'id'>): ServiceEvent;
  /** Events after `afterId` (0: from the first), oldest first, at most `limit`. */
  serviceEvents(service: string, afterId: number, limit: number): ServiceEvent[];
  deleteServiceEvents(service: string): void;
}

export interface Clock {
  now(): Date;
}

// ---------- service gateway ----------

/** A ready replica of a service: a VM and the address its port answers on. */
export interface Replica {
  vmId: string;
  ip: string;
  port: number;
}

/** What the gateway asks of the service layer. */
export interface ReplicaSource {
  /** The service's ready replicas now (may be empty). */
  ready(service: string): Replica[];
  /**
   * Replicas out of rotation that are being stopped gracefully (a scale-down): no new
   * request goes to them, but the requests they have finish. A replica in neither list
   * is gone, and whatever it still had fails at once.
   */
  draining(service: string): Replica[];
  /** Asks for a replica to be started (scale from zero); readiness comes through replicasChanged(). */
  wake(service: string): Promise<void>;
}

/** Counters for the autoscaler: `requests`, `failures` and `retries` only grow. */
export interface GatewayStats {
  service: string;
  /** Requests being proxied now plus the queued ones. */
  inflight: number;
  queued: number;
  requests: number;
  failures: number;
  retries: number;
}

export interface GatewayOpenOptions {
  hostAddr: string;
  /** 0 or undefined: a free port. */
  hostPort?: number;
  queueLimit: number;
  holdTimeoutMs: number;
}

/** HTTP entry points of services on the host. */
export interface ServiceGateway {
  open(service: string, settings: GatewayOpenOptions): Promise<{ url: string; hostPort: number }>;
  close(service: string): Promise<void>;
  closeAll(): Promise<void>;
  stats(service: string): GatewayStats | null;
  /** Requests being proxied to one replica now (0 when none, or no gateway). */
  inflightTo(service: string, vmId: string): number;
  replicasChanged(service: string): void;
}
