import type { VmUsage, VmView } from '../api/types';
import { duration, fixed, mib, ms } from '../format';

/** What a fleet row knows: the VM, its last usage sample and the clock (for uptime). */
export interface FleetRow {
  vm: VmView;
  usage: VmUsage | undefined;
}

export interface FleetColumn {
  key: string;
  label: string;
  width: string;
  numeric?: boolean;
  sortValue: (row: FleetRow, now: number) => string | number | null;
  text: (row: FleetRow, now: number) => string;
}

/** States with a VMM process: the uptime counts from startedAt. */
const ACTIVE = new Set(['booting', 'running', 'paused', 'stopping']);

export function uptimeMs(vm: VmView, now: number): number | null {
  if (!ACTIVE.has(vm.state) || !vm.startedAt) return null;
  return now - Date.parse(vm.startedAt);
}

export const FLEET_COLUMNS: FleetColumn[] = [
  { key: 'state', label: 'State', width: '100px', sortValue: (r) => r.vm.state, text: (r) => r.vm.state },
  { key: 'name', label: 'Name', width: 'minmax(140px, 2fr)', sortValue: (r) => r.vm.name, text: (r) => r.vm.name },
  { key: 'origin', label: 'Origin', width: '76px', sortValue: (r) => r.vm.origin, text: (r) => r.vm.origin },
  { key: 'ip', label: 'IP', width: '112px', sortValue: (r) => ipSortKey(r.vm.ip), text: (r) => r.vm.ip ?? '–' },
  { key: 'image', label: 'Image', width: 'minmax(120px, 1.5fr)', sortValue: (r) => r.vm.image, text: (r) => r.vm.image },
  { key: 'vcpus', label: 'vCPUs', width: '58px', numeric: true, sortValue: (r) => r.vm.vcpus, text: (r) => String(r.vm.vcpus) },
  { key: 'mem', label: 'Memory', width: '76px', numeric: true, sortValue: (r) => r.vm.memMiB, text: (r) => mib(r.vm.memMiB) },
  { key: 'boot', label: 'Boot', width: '72px', numeric: true, sortValue: (r) => r.vm.bootMs, text: (r) => ms(r.vm.bootMs) },
  {
    key: 'uptime',
    label: 'Uptime',
    width: '78px',
    numeric: true,
    sortValue: (r, now) => uptimeMs(r.vm, now),
    text: (r, now) => {
      const up = uptimeMs(r.vm, now);
      return up === null ? '–' : duration(up);
    },
  },
  { key: 'cpu', label: 'CPU %', width: '62px', numeric: true, sortValue: (r) => r.usage?.cpuPct ?? null, text: (r) => fixed(r.usage?.cpuPct) },
  { key: 'rss', label: 'RSS MiB', width: '70px', numeric: true, sortValue: (r) => r.usage?.rssMiB ?? null, text: (r) => fixed(r.usage?.rssMiB, 0) },
];

export const FLEET_GRID = FLEET_COLUMNS.map((c) => c.width).join(' ');

/** 10.0.0.9 before 10.0.0.10. */
function ipSortKey(ip: string | null): string | null {
  return ip === null ? null : ip.split('.').map((n) => n.padStart(3, '0')).join('.');
}

export function matchesFilter(vm: VmView, filter: string): boolean {
  if (!filter) return true;
  const f = filter.toLowerCase();
  return [vm.name, vm.image, vm.ip ?? '', vm.state].some((v) => v.toLowerCase().includes(f));
}

/** Missing values (null) go last whatever the direction. */
export function compareRows(column: FleetColumn, dir: 1 | -1, now: number) {
  return (a: FleetRow, b: FleetRow): number => {
    const va = column.sortValue(a, now);
    const vb = column.sortValue(b, now);
    if (va === null || vb === null) return va === vb ? a.vm.name.localeCompare(b.vm.name) : va === null ? 1 : -1;
    const c = typeof va === 'number' && typeof vb === 'number' ? va - vb : String(va).localeCompare(String(vb), undefined, { numeric: true });
    return c !== 0 ? c * dir : a.vm.name.localeCompare(b.vm.name);
  };
}
