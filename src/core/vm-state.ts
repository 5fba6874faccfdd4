import { UigniterError } from './errors.js';
import type { VmRecord, VmState } from './models.js';

/** Legal moves of a VM's lifecycle. Every change of state goes through `transition`. */
const NEXT: Record<VmState, readonly VmState[]> = {
  creating: ['booting', 'failed'],
  booting: ['running', 'stopping', 'stopped', 'failed'],
  running: ['paused', 'stopping', 'stopped', 'failed'],
  paused: ['running', 'stopping', 'stopped', 'failed'],
  stopping: ['stopped', 'suspended', 'failed'],
  suspended: ['booting', 'stopped'],
  stopped: ['booting'],
  failed: ['booting'],
};

export function canTransition(from: VmState, to: VmState): boolean {
  return NEXT[from].includes(to);
}

/** A VM whose VMM may be up: the ones to watch, adopt, or stop. */
export function isActive(state: VmState): boolean {
  return state === 'booting' || state === 'running' || state === 'paused' || state === 'stopping';
}

/** Applies a state change and its facts to a copy of the record; throws on an illegal move. */
export function transition(vm: VmRecord, to: VmState, now: Date, patch: Partial<VmRecord> = {}): VmRecord {
  if (vm.state !== to && !canTransition(vm.state, to)) {
    throw new UigniterError('conflict', `VM ${vm.name} is ${vm.state}; it cannot become ${to}`);
  }
  const at = now.toISOString();
  return {
    ...vm,
    ...patch,
    state: to,
    updatedAt: at,
    stateChangedAt: vm.state === to ? vm.stateChangedAt : at,
  };
}
