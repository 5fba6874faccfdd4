import type { Core } from '../../core/core.js';

export interface Transition {
  at: string;
  from: string | null;
  to: string;
  error: string | null;
}

/** Transitions kept per VM: enough for a page's state history, bounded whatever the uptime. */
const PER_VM = 64;

/**
 * Each VM's state changes since the daemon started, in memory (the VM record holds only the
 * latest): what a dashboard shows as a VM's state history. Forgotten when the VM is deleted.
 */
export class VmHistory {
  private readonly byId = new Map<string, Transition[]>();

  constructor(records: Core['records']) {
    records.on('transition', (vm, from) => {
      const list = this.byId.get(vm.id) ?? [];
      list.push({ at: vm.stateChangedAt, from, to: vm.state, error: vm.error });
      if (list.length > PER_VM) list.splice(0, list.length - PER_VM);
      this.byId.set(vm.id, list);
    });
    records.on('removed', (vm) => this.byId.delete(vm.id));
  }

  of(id: string): Transition[] {
    return [...(this.byId.get(id) ?? [])];
  }
}
