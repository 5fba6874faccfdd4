import { UigniterError } from '../errors.js';
import type { CodeCacheStats } from '../ports.js';
import type { Fleet } from '../supervision/fleet.js';
import type { VmUsage } from '../supervision/usage-meter.js';
import { isActive } from '../vm-state.js';

/** What a running VM's VMM holds and burns: the meter's last figures, and its translation cache read now. */
export interface VmStats {
  id: string;
  name: string;
  /** As the usage meter last measured it (null until it has). */
  usage: VmUsage | null;
  /** Null when the VMM has no translation cache (KVM). */
  codeCache: CodeCacheStats | null;
}

export class VmStatsQuery {
  constructor(private readonly fleet: Fleet) {}

  async stats(ref: string): Promise<VmStats> {
    const vm = this.fleet.records.get(ref);
    const proc = this.fleet.supervisor.context(vm.id)?.process;
    if (!isActive(vm.state) || !proc) {
      throw new UigniterError('failed_precondition', `VM '${vm.name}' is ${vm.state}: it has no VMM to read`);
    }
    return { id: vm.id, name: vm.name, usage: this.fleet.usage.get(vm), codeCache: await proc.codeCache() };
  }
}
