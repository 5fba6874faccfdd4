import { UigniterError } from '../errors.js';
import type { VmRecord } from '../models.js';
import { isActive } from '../vm-state.js';
import type { VmUsage } from './usage-meter.js';

export interface ManagerLimits {
  maxVms: number;
  /**
   * vCPUs in use: a VM that boots (or was not measured yet) counts its vCPUs, a running one
   * the cores its VMM burns (an idle VM a fraction of a percent), a paused one none.
   */
  maxVcpus: number;
  /**
   * Memory in use, MiB: a running or paused VM counts what its VMM holds (PSS, measured)
   * plus what the VMM may still add by itself (TCG's translation cache up to its bound),
   * one that boots (or was not measured yet) the memory it was given.
   */
  maxMemMiB: number;
  /** A VM is refused when the host's available memory would drop below this, MiB. */
  minFreeMiB: number;
}

/** What the limits are checked against: each VM's measured use and the host's free memory. */
export interface UsageView {
  usage(vm: VmRecord): VmUsage | null;
  /** The host's available memory (MemAvailable), MiB; null when it cannot be read. */
  hostAvailableMiB(): number | null;
}

const UNMEASURED: UsageView = { usage: () => null, hostAvailableMiB: () => null };

/** Whether a VM counts its measurement (running or paused, and measured in this boot). */
function measured(vm: VmRecord, u: VmUsage | null): u is VmUsage {
  return (vm.state === 'running' || vm.state === 'paused') && u !== null;
}

/**
 * What one VM counts against the memory limit, MiB: what it holds and what its VMM may
 * still add by itself (a clone's translation cache grows for half an hour after its create,
 * and a host filled on what VMs held at their creates ran out of memory a minute later).
 */
export function memoryInUse(vm: VmRecord, u: VmUsage | null): number {
  if (!isActive(vm.state)) return 0;
  return measured(vm, u) ? u.pssMiB + u.growthMiB : vm.spec.memMiB;
}

/** What one VM counts against the vCPU limit. */
export function vcpusInUse(vm: VmRecord, u: VmUsage | null): number {
  if (!isActive(vm.state) || vm.state === 'paused') return 0;
  if (vm.state === 'running' && u?.cpuPct != null) return Math.min(vm.spec.vcpus, u.cpuPct / 100);
  return vm.spec.vcpus;
}

/** Refuses a VM that would take the daemon past its limits (HTTP 429), naming the resource. */
export function checkLimits(all: VmRecord[], l: ManagerLimits, vcpus: number, memMiB: number, newVm: boolean, view: UsageView = UNMEASURED): void {
  if (newVm && all.length + 1 > l.maxVms) {
    throw new UigniterError('limit_exceeded', `the daemon is limited to ${l.maxVms} VMs and has ${all.length}`);
  }
  const up = all.filter((v) => isActive(v.state));
  const cpu = up.reduce((s, v) => s + vcpusInUse(v, view.usage(v)), 0);
  const mem = up.reduce((s, v) => s + memoryInUse(v, view.usage(v)), 0);
  if (cpu + vcpus > l.maxVcpus) {
    throw new UigniterError(
      'limit_exceeded',
      `${vcpus} more vCPUs would exceed the daemon's limit of ${l.maxVcpus}: ${vmsUse(up.length)} ${fmt(cpu)} (booting VMs count their vCPUs, running ones the cores they burn)`,
      'vcpus',
    );
  }
  if (mem + memMiB > l.maxMemMiB) {
    throw new UigniterError(
      'limit_exceeded',
      `${memMiB} MiB more memory would exceed the daemon's limit of ${l.maxMemMiB} MiB: ${vmsUse(up.length)} ${Math.round(mem)} MiB (measured for running VMs with room for their VMMs to grow, their full size for booting ones)`,
      'memMiB',
    );
  }
  // The host's own figure knows what the VMs do not (snapshots on tmpfs, other programs),
  // but not yet what the VMs that boot now will touch (those count their full size), nor
  // what running VMMs will still add by themselves.
  const avail = view.hostAvailableMiB();
  const pending = up.filter((v) => !measured(v, view.usage(v))).reduce((s, v) => s + v.spec.memMiB, 0);
  const growth = up.reduce((s, v) => {
    const u = view.usage(v);
    return s + (measured(v, u) ? u.growthMiB : 0);
  }, 0);
  if (avail !== null && avail - pending - growth - memMiB < l.minFreeMiB) {
    throw new UigniterError(
      'limit_exceeded',
      `${memMiB} MiB more memory would leave the host less than the ${l.minFreeMiB} MiB it keeps free (${Math.round(avail)} MiB available, ${pending} MiB of it promised to VMs that are booting, ${Math.round(growth)} MiB kept for running VMMs to grow)`,
      'memMiB',
    );
  }
}

function vmsUse(n: number): string {
  return n === 1 ? 'its 1 VM uses' : `its ${n} VMs use`;
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}
