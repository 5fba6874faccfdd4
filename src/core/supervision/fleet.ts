import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { messageOf, UigniterError } from '../errors.js';
import { KeyedMutex } from '../keyed-mutex.js';
import type { VmRecord } from '../models.js';
import type { PlanHooks } from '../plan.js';
import type { BootDeps } from '../steps/boot-context.js';
import type { ManagerLimits, UsageView } from './limits.js';
import { UsageMeter, type ProcessSampler } from './usage-meter.js';
import { BUSY_CPU_PCT, CodeCacheWatch } from './code-cache-watch.js';
import { hostAvailableMiB } from '../../util/process-usage.js';
import { Supervisor } from './supervisor.js';
import { VmRecords } from './vm-records.js';

/** A test's way to make plans fail: called after each step ran; throwing fails that step. */
export type FaultHook = (step: string) => void;

export interface FleetOptions extends Omit<BootDeps, 'save'> {
  vmsDir: string;
  /** Where named snapshots and templates keep their files. */
  snapshotsDir: string;
  limits: ManagerLimits;
  /** Make a template of a VM spec when its first VM booted with boot=auto becomes ready. */
  templates: boolean;
  /** How VMM processes are measured for the limits (default: /proc). */
  sampler?: ProcessSampler;
  /** Failure injection, wired by the composition root for tests only. */
  faults?: FaultHook;
}

/**
 * What the VM commands share: the records, one lock per VM, the supervisor of live VMs,
 * and the adapters. Commands, snapshots, templates and start-up repair each take it.
 */
export class Fleet {
  readonly records: VmRecords;
  readonly locks = new KeyedMutex();
  /** VMs whose state is being saved right now (frozen for a moment): health checks wait. */
  readonly saving = new Set<string>();
  readonly supervisor: Supervisor;
  readonly deps: BootDeps;
  readonly hooks: PlanHooks;
  /** What each VM really uses, for the limits. */
  readonly usage: UsageMeter;
  readonly usageView: UsageView;
  /** Warns of VMs whose translation cache keeps filling up. */
  readonly codeCacheWatch: CodeCacheWatch;

  constructor(readonly o: FleetOptions) {
    this.records = new VmRecords(o.store);
    this.deps = { ...o, save: (vm) => this.records.save(vm) };
    this.hooks = {
      afterStep: (name) => o.faults?.(name),
      onUndoError: (name, e) => o.log(`undo of step ${name} failed: ${messageOf(e)}`),
    };
    // No VMM handle: nothing known to grow (0). A handle whose process is gone: null.
    this.usage = new UsageMeter(this.records, o.sampler, (vm) => this.supervisor.context(vm.id)?.process?.growthBytes() ?? Promise.resolve(0));
    this.usageView = { usage: (vm) => this.usage.get(vm), hostAvailableMiB };
    this.codeCacheWatch = new CodeCacheWatch(
      this.records,
      (vm) => this.supervisor.context(vm.id)?.process?.codeCache() ?? Promise.resolve(null),
      (vm) => (this.usage.get(vm)?.cpuPct ?? 0) >= BUSY_CPU_PCT,
      (vm, flushes, overMs, boundMiB) =>
        o.log(`VM ${vm.name}: its ${boundMiB} MiB translation cache filled up ${flushes} times in ${Math.round(overMs / 1000)} s: it thrashes (give it a larger codeCacheMiB; GET /vm/${vm.name}/stats)`),
    );
    this.supervisor = new Supervisor(this.records, this.deps, this.locks, this.hooks, (id) => this.runDir(id));
  }

  runDir(id: string): string {
    return join(this.o.vmsDir, id);
  }

  snapshotDir(name: string): string {
    return join(this.o.snapshotsDir, name);
  }

  /** Frees the volumes a VM holds (their data stays). */
  detachVolumes(vm: VmRecord): void {
    for (const v of vm.spec.volumes) {
      const rec = this.o.store.getVolume(v.name);
      if (rec?.attachedTo === vm.id) this.o.store.updateVolume({ ...rec, attachedTo: null });
    }
  }

  /**
   * Removes a VM that is not running: its volumes' attachment, its record, its lease, its
   * directory. The record goes before the lease: a daemon killed in between leaves a lease
   * and a directory that no record owns, which the next start's reconciler removes. The
   * other way round it left a stopped VM with an address and no lease for it, which a later
   * create could lease again (the fault suite's random SIGKILLs found it). The fault hook
   * names the two points in between (`forget-record`, `forget-lease`) so a test can crash
   * the daemon at each.
   */
  async forget(vm: VmRecord): Promise<void> {
    this.detachVolumes(vm);
    this.records.delete(vm);
    this.o.faults?.('forget-record');
    await this.o.network.release(vm.id);
    this.o.faults?.('forget-lease');
    await rm(this.runDir(vm.id), { recursive: true, force: true });
  }

  /** Runs fn under the VM's lock with a fresh copy of its record. */
  withVm<T>(ref: string, fn: (vmId: string) => Promise<T>): Promise<T> {
    const { id } = this.records.get(ref);
    return this.locks.run(id, () => fn(id));
  }

  /** The running VM's process, or a conflict naming its state. */
  processOf(id: string, action: string) {
    const vm = this.records.get(id);
    const proc = this.supervisor.context(id)?.process;
    if (!proc || (vm.state !== 'running' && vm.state !== 'paused')) {
      throw new UigniterError('conflict', `VM ${vm.name} is ${vm.state}; only a running or paused VM can be ${action}`);
    }
    return { vm, proc };
  }
}
