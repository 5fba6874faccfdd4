// Shapes of what the daemon sends. The views are the daemon's own schema types
// (src/api/schemas.ts), imported as types only: nothing of the daemon's code is bundled, and
// the page cannot drift from the API. The stream's own messages are described here.
import type {
  ImageView,
  PoolView,
  ScalePointView,
  ServiceEventView,
  ServiceView,
  SnapshotView,
  VmView,
  VolumeView,
} from '../../../src/api/schemas.js';
import type { PipelineStats } from '../../../src/api/live/pipeline-stats.js';
import type { PlantStats } from '../../../src/api/live/plant-stats.js';

export type { ImageView, PipelineStats, PlantStats, PoolView, ServiceEventView, ServiceView, SnapshotView, VmView, VolumeView };
export type VmState = VmView['state'];
export type ScalePoint = ScalePointView;

export interface Inventory {
  images: ImageView[];
  snapshots: SnapshotView[];
  templates: SnapshotView[];
  volumes: VolumeView[];
}

export interface VmUsage {
  cpuPct: number;
  rssMiB: number;
}

export interface StateTransition {
  at: string;
  from: string | null;
  to: string;
  error: string | null;
}

export interface Health {
  status: string;
  version: string;
  vms: number;
  ui?: string;
  auth?: boolean;
}

/** `at` of stream messages: the contract does not fix the type, so both are accepted. */
export type Instant = string | number;

/** Payloads of the /events stream, by event name. */
export interface LiveEvents {
  snapshot: { at: Instant; version?: string; vms: VmView[]; services: ServiceView[]; pools: PoolView[]; inventory: Inventory };
  vm: { vm: VmView; from: string | null };
  'vm-removed': { id: string };
  'vm-usage': { at: Instant; usage: Record<string, VmUsage> };
  services: { services: ServiceView[] };
  'service-events': { name: string; events: ServiceEventView[] };
  'scale-points': { name: string; points: ScalePoint[] };
  pools: { pools: PoolView[] };
  inventory: Inventory;
  pipeline: { at: Instant; vm: string; stats: PipelineStats };
  plant: { at: Instant } & PlantStats;
}

