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
}

export type VmState = 'creating' | 'booting' | 'running' | 'stopping' | 'stopped' | 'failed';

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
