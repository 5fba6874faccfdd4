import type { Core } from '../../core/core.js';
import type { PlantStats } from './plant-stats.js';

/** The industrial example's VMs (src/demo/industrial/ics-deployment.ts names them) and app ports. */
const PLANT = { vm: 'plant', image: 'ics-plant', port: 9100 };
const CONTROLLERS = ['controller-a', 'controller-b'];
const CONTROLLER_PORT = 9103;
const HISTORIAN = { vm: 'historian', port: 9104 };
const RECENT_ALARMS = 10;
/** Alarms older than this (by when the historian received them) are not read. */
const ALARM_HORIZON_MS = 15 * 60_000;

/** A fault as the plant reports it ({name, valve?, sensor?, tank?, ...}), as a short text. */
function faultText(f: unknown): string {
  const o = obj(f);
  if (!o) return String(f);
  const target = o['valve'] ?? o['sensor'] ?? (o['tank'] !== undefined ? `tank ${String(o['tank'])}` : undefined);
  return target === undefined ? String(o['name']) : `${String(o['name'])} ${String(target)}`;
}

async function getJson(url: string, timeoutMs: number): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | null => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/**
 * Reads the industrial example's state when its plant VM runs: the plant's levels, valves
 * and faults, each controller's role and epoch, the setpoints of the active one, and the
 * historian's alarms; what the dashboard's demo view draws as trends. Null when the example
 * does not run or the plant does not answer in time; a controller or the historian that does
 * not answer is shown as such, not hidden.
 */
export async function probePlant(records: Core['records'], timeoutMs = 1000): Promise<PlantStats | null> {
  const ipOf = (name: string, image?: string): string | null => {
    const vm = records.find(name);
    if (!vm || vm.state !== 'running' || !vm.ip) return null;
    if (image && vm.spec.image.split(':')[0] !== image) return null;
    return vm.ip;
  };
  const plantIp = ipOf(PLANT.vm, PLANT.image);
  if (!plantIp) return null;
  const state = obj(await getJson(`http://${plantIp}:${PLANT.port}/state`, timeoutMs).catch(() => null));
  const truth = obj(state?.['truth']);
  const sensors = obj(state?.['levels']);
  const valves = obj(state?.['valves']);
  const limits = obj(state?.['limits']);
  const t = num(state?.['t']);
  if (!state || !truth || !sensors || !valves || !limits || t === null) return null;
  const controllers = await Promise.all(
    CONTROLLERS.map(async (name) => {
      const ip = ipOf(name);
      const s = ip ? obj(await getJson(`http://${ip}:${CONTROLLER_PORT}/status`, timeoutMs).catch(() => null)) : null;
      return { id: name.slice('controller-'.length), role: typeof s?.['role'] === 'string' ? s['role'] : 'unknown', epoch: num(s?.['epoch']) ?? 0, reachable: s !== null, setpoints: obj(s?.['setpoints']) };
    }),
  );
  const active = controllers.find((c) => c.reachable && c.role === 'active');
  const sp = active?.setpoints ?? null;
  const historianIp = ipOf(HISTORIAN.vm);
  let alarms: PlantStats['alarms'] = null;
  if (historianIp) {
    const base = `http://${historianIp}:${HISTORIAN.port}`;
    const [pending, list] = await Promise.all([getJson(`${base}/alarms/pending`, timeoutMs).catch(() => null), getJson(`${base}/alarms?from=${Date.now() - ALARM_HORIZON_MS}`, timeoutMs).catch(() => null)]);
    const rows = Array.isArray(obj(list)?.['alarms']) ? (obj(list)!['alarms'] as unknown[]) : null;
    const p = num(obj(pending)?.['pending']);
    if (rows && p !== null) {
      alarms = {
        pending: p,
        recent: rows.slice(-RECENT_ALARMS).map((r) => {
          const a = obj(r) ?? {};
          return { id: String(a['id']), kind: typeof a['kind'] === 'string' ? a['kind'] : null, tag: typeof a['tag'] === 'string' ? a['tag'] : null, raisedAt: num(a['raisedAt']), handledAt: num(a['handledAt']), handledMs: num(a['handledMs']) };
        }),
      };
    }
  }
  const limitsOf = (k: string): Json => obj(limits[k]) ?? {};
  return {
    plant: {
      t,
      levels: { level1: num(sensors['level1']) ?? 0, level2: num(sensors['level2']) ?? 0 },
      temp: num(state['temp']) ?? 0,
      truth: { level1: num(truth['level1']) ?? 0, level2: num(truth['level2']) ?? 0, temp: num(truth['temp']) ?? 0 },
      valves: { inflow1: num(valves['inflow1']) ?? 0, inflow2: num(valves['inflow2']) ?? 0, heater: num(valves['heater']) ?? 0 },
      faults: Array.isArray(state['faults']) ? state['faults'].map(faultText) : [],
      limits: {
        level: { low: num(limitsOf('level')['low']) ?? 0, high: num(limitsOf('level')['high']) ?? 0, highHigh: num(limitsOf('level')['highHigh']) ?? 0, tankHeight: num(limitsOf('level')['tankHeight']) ?? 0 },
        temp: { low: num(limitsOf('temp')['low']) ?? 0, high: num(limitsOf('temp')['high']) ?? 0, highHigh: num(limitsOf('temp')['highHigh']) ?? 0 },
      },
    },
    setpoints: sp ? { level1: num(sp['level1']) ?? 0, level2: num(sp['level2']) ?? 0, temp: num(sp['temp']) ?? 0 } : null,
    controllers: controllers.map(({ id, role, epoch, reachable }) => ({ id, role, epoch, reachable })),
    alarms,
  };
}
