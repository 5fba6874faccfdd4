import { EventEmitter } from 'node:events';
import { notFound } from '../errors.js';
import type { VmRecord, VmState } from '../models.js';
import type { StateStore } from '../ports.js';

export interface VmEvents {
  transition: [vm: VmRecord, from: VmState | null];
  booted: [vm: VmRecord, ms: number];
  /** Any saved change (a new state or another field: an address, a name, a pid). */
  updated: [vm: VmRecord, from: VmState | null];
  removed: [vm: VmRecord];
}

/**
 * The VM records: every change is saved before it is reported, and each one bumps a
 * version that lets readers cache what they derive from the list.
 */
export class VmRecords extends EventEmitter<VmEvents> {
  private changes = 0;

  constructor(readonly store: StateStore) {
    super();
  }

  get(ref: string): VmRecord {
    const vm = this.store.getVm(ref);
    if (!vm) throw notFound('VM', ref);
    return vm;
  }

  find(ref: string): VmRecord | null {
    return this.store.getVm(ref);
  }

  list(): VmRecord[] {
    return this.store.listVms();
  }

  /** Grows with every change of any VM. */
  get version(): number {
    return this.changes;
  }

  insert(vm: VmRecord): void {
    this.store.insertVm(vm);
    this.changes++;
    this.emit('transition', vm, null);
    this.emit('updated', vm, null);
  }

  save(vm: VmRecord): void {
    const before = this.store.getVm(vm.id);
    this.store.updateVm(vm);
    this.changes++;
    if (before && before.state !== vm.state) this.emit('transition', vm, before.state);
    this.emit('updated', vm, before?.state ?? null);
  }

  delete(vm: VmRecord): void {
    this.store.deleteVm(vm.id);
    this.changes++;
    this.emit('removed', vm);
  }
}
