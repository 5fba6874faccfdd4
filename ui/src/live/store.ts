import type {
  Instant,
  Inventory,
  LiveEvents,
  PipelineStats,
  PoolView,
  ScalePoint,
  ServiceEventView,
  ServiceView,
  VmUsage,
  VmView,
} from '../api/types';
import { observable } from '../observable';
import { addPlantStats, EMPTY_PLANT_HISTORY, type PlantHistory } from './plant-history';
import type { SseMessage } from './sse-parser';

/** Everything the page knows from the /events stream. Replaced (never patched) on each change. */
export interface LiveData {
  /** How many `snapshot` messages came: 0 = no data yet. Views refetch their history when it moves. */
  generation: number;
  version: string | null;
  vms: Record<string, VmView>;
  usage: Record<string, VmUsage>;
  services: ServiceView[];
  pools: PoolView[];
  inventory: Inventory;
  /** Per service, oldest first, capped. */
  serviceEvents: Record<string, ServiceEventView[]>;
  scalePoints: Record<string, ScalePoint[]>;
  pipeline: PipelineSample[];
  plant: PlantHistory;
}

export interface PipelineSample {
  at: number;
  stats: PipelineStats;
}

export type Connection =
  | { status: 'connecting' }
  | { status: 'live' }
  | { status: 'disconnected'; reason: string; retryMs: number };

const EMPTY: LiveData = {
  generation: 0,
  version: null,
  vms: {},
  usage: {},
  services: [],
  pools: [],
  inventory: { images: [], snapshots: [], templates: [], volumes: [] },
  serviceEvents: {},
  scalePoints: {},
  pipeline: [],
  plant: EMPTY_PLANT_HISTORY,
};

/** How far back charts go; older points are dropped from memory. */
export const HISTORY_MS = 15 * 60_000;
const MAX_EVENTS = 500;

export const live = observable<LiveData>(EMPTY, 16);
export const connection = observable<Connection>({ status: 'connecting' });

export function toMs(at: Instant): number {
  return typeof at === 'number' ? at : Date.parse(at);
}

export function clearLiveData(): void {
  live.set(EMPTY);
  connection.set({ status: 'connecting' });
}

/** Points sorted by t without duplicates, only the last HISTORY_MS. */
export function mergePoints(old: ScalePoint[], added: ScalePoint[], now = Date.now()): ScalePoint[] {
  const byT = new Map<number, ScalePoint>();
  for (const p of old) byT.set(p.t, p);
  for (const p of added) byT.set(p.t, p);
  const since = now - HISTORY_MS;
  return [...byT.values()].filter((p) => p.t >= since).sort((a, b) => a.t - b.t);
}

export function mergeEvents(old: ServiceEventView[], added: ServiceEventView[]): ServiceEventView[] {
  const byId = new Map<number, ServiceEventView>();
  for (const e of old) byId.set(e.id, e);
  for (const e of added) byId.set(e.id, e);
  return [...byId.values()].sort((a, b) => a.id - b.id).slice(-MAX_EVENTS);
}

/** A service view fetched its history: merge it with what the stream brought meanwhile. */
export function addServiceHistory(name: string, points: ScalePoint[], events: ServiceEventView[]): void {
  const d = live.get();
  live.set({
    ...d,
    scalePoints: { ...d.scalePoints, [name]: mergePoints(d.scalePoints[name] ?? [], points) },
    serviceEvents: { ...d.serviceEvents, [name]: mergeEvents(d.serviceEvents[name] ?? [], events) },
  });
}

type Handlers = { [K in keyof LiveEvents]: (d: LiveData, payload: LiveEvents[K]) => LiveData };

const handlers: Handlers = {
  snapshot: (d, p) => ({
    ...d,
    generation: d.generation + 1,
    version: p.version ?? null, // optional in practice: older daemons leave it out
    vms: Object.fromEntries(p.vms.map((vm) => [vm.id, vm])),
    usage: {},
    services: p.services,
    pools: p.pools,
    inventory: p.inventory,
    // the service views fetch their history again on a new generation; the stream follows from here
    serviceEvents: {},
    scalePoints: {},
  }),
  vm: (d, p) => ({ ...d, vms: { ...d.vms, [p.vm.id]: p.vm } }),
  'vm-removed': (d, p) => {
    const vms = { ...d.vms };
    delete vms[p.id];
    return { ...d, vms };
  },
  'vm-usage': (d, p) => ({ ...d, usage: p.usage }),
  services: (d, p) => ({ ...d, services: p.services }),
  'service-events': (d, p) => ({
    ...d,
    serviceEvents: { ...d.serviceEvents, [p.name]: mergeEvents(d.serviceEvents[p.name] ?? [], p.events) },
  }),
  'scale-points': (d, p) => ({
    ...d,
    scalePoints: { ...d.scalePoints, [p.name]: mergePoints(d.scalePoints[p.name] ?? [], p.points) },
  }),
  pools: (d, p) => ({ ...d, pools: p.pools }),
  inventory: (d, p) => ({ ...d, inventory: p }),
  pipeline: (d, p) => {
    const at = toMs(p.at);
    const kept = d.pipeline.filter((s) => s.at >= at - HISTORY_MS && s.at < at);
    return { ...d, pipeline: [...kept, { at, stats: p.stats }] };
  },
  plant: (d, { at, ...stats }) => ({ ...d, plant: addPlantStats(d.plant, toMs(at), stats, HISTORY_MS) }),
};

function isKind(kind: string): kind is keyof LiveEvents {
  return Object.hasOwn(handlers, kind);
}

/** Applies one stream message; unknown kinds are ignored (a newer daemon may send more). */
export function applyMessage(message: SseMessage): void {
  if (!isKind(message.event)) return;
  let payload: unknown;
  try {
    payload = JSON.parse(message.data);
  } catch {
    console.warn(`uigniter: unreadable ${message.event} message`);
    return;
  }
  const handler = handlers[message.event] as (d: LiveData, p: unknown) => LiveData; // payload shape is the daemon's contract
  try {
    live.set(handler(live.get(), payload));
  } catch (err) {
    // a message not shaped as expected is skipped: dropping the stream for it would loop
    console.warn(`uigniter: ${message.event} message not applied`, err);
    return;
  }
  if (message.event === 'snapshot') connection.set({ status: 'live' });
}

/** VM by id, or by name (routes use the id; a name also works, as in the API). */
export function findVm(d: LiveData, idOrName: string): VmView | undefined {
  return d.vms[idOrName] ?? Object.values(d.vms).find((vm) => vm.name === idOrName);
}
