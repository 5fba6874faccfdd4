import { UigniterError } from '../errors.js';
import type { VmRecord } from '../models.js';
import { isActive } from '../vm-state.js';

export interface ManagerLimits {
  maxVms: number;
  /** Sum of vCPUs of VMs that are up (paused ones too: they hold their memory). */
  maxVcpus: number;
  /** Sum of memory of VMs that are up. */
  maxMemMiB: number;
}

/** Refuses a VM that would take the daemon past its limits (HTTP 429). */
export function checkLimits(all: VmRecord[], l: ManagerLimits, vcpus: number, memMiB: number, newVm: boolean): void {
  if (newVm && all.length + 1 > l.maxVms) {
    throw new UigniterError('limit_exceeded', `the daemon is limited to ${l.maxVms} VMs and has ${all.length}`);
  }
  const up = all.filter((v) => isActive(v.state));
  const cpu = up.reduce((s, v) => s + v.spec.vcpus, 0);
  const mem = up.reduce((s, v) => s + v.spec.memMiB, 0);
  if (cpu + vcpus > l.maxVcpus) {
    throw new UigniterError('limit_exceeded', `${vcpus} more vCPUs would exceed the daemon's limit of ${l.maxVcpus} (${cpu} in use)`);
  }
  if (mem + memMiB > l.maxMemMiB) {
    throw new UigniterError('limit_exceeded', `${memMiB} MiB more memory would exceed the daemon's limit of ${l.maxMemMiB} MiB (${mem} MiB in use)`);
  }
}
