import { access, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ConsoleTail } from '../../guest/console-tail.js';
import { GuestAgent } from '../../guest/guest-agent.js';
import { CONSOLE_LOG, CONSOLE_ROTATE_BYTES } from '../guest-boot.js';
import type { VmRecord } from '../models.js';
import { ADOPT } from '../plans/boot-plans.js';
import type { VmmProcess } from '../ports.js';
import { newBootContext } from '../steps/boot-context.js';
import { restoreVmm } from '../steps/restore-vmm.js';
import { messageOf } from '../errors.js';
import { isActive, transition } from '../vm-state.js';
import type { Fleet } from '../supervision/fleet.js';

/** How long an adopted VM's agent gets to answer a thaw. */
const THAW_TIMEOUT_MS = 3000;

export interface ReconcileReport {
  adopted: string[];
  ended: string[];
  removed: string[];
}

/**
 * Start-up repair: compares the stored state with what runs. VMs whose VMM still runs are
 * adopted (ports and names made again); those whose VMM died are marked and cleaned; a
 * create or a restore that a crash interrupted is undone; taps, leases, directories,
 * processes and snapshot files that nothing owns are removed.
 */
export class Reconciler {
  constructor(private readonly fleet: Fleet) {}

  private get o() {
    return this.fleet.o;
  }

  async reconcile(): Promise<ReconcileReport> {
    const report: ReconcileReport = { adopted: [], ended: [], removed: [] };
    for (const vm of this.fleet.records.list()) {
      if (vm.state === 'creating') {
        await this.killStray(vm);
        await this.undoCreate(vm);
        report.removed.push(vm.name);
        continue;
      }
      if (vm.state === 'suspended') {
        if (!vm.suspendedState || !(await exists(vm.suspendedState.dir))) {
          this.fleet.records.save(transition(vm, 'stopped', this.o.clock.now(), { suspendedState: null, error: 'its saved state is gone; it starts cold' }));
          report.ended.push(vm.name);
        }
        continue;
      }
      if (!isActive(vm.state)) continue;
      // A restore the crash interrupted never renewed the guest's identity: it must not run.
      const interruptedRestore = vm.state === 'booting' && (vm.restoredFrom !== null || vm.suspendedState !== null);
      const proc = vm.pid && !interruptedRestore ? await this.adoptProcess(vm) : null;
      if (proc) {
        try {
          await this.adopt(vm, proc);
          report.adopted.push(vm.name);
        } catch (e) {
          // Its plan rolled back (the VMM is gone): one VM that cannot be taken over must
          // not keep the daemon from starting.
          this.o.log(`VM ${vm.name} could not be adopted: ${messageOf(e)}`);
          await this.cleanDead(this.fleet.records.get(vm.id), `it could not be adopted after a daemon restart: ${messageOf(e)}`);
          report.ended.push(vm.name);
        }
      } else {
        await this.cleanDead(vm);
        report.ended.push(vm.name);
      }
    }
    await this.removeOrphans();
    return report;
  }

  private adoptProcess(vm: VmRecord): Promise<VmmProcess | null> {
    return this.o.drivers.get(vm.spec.driver).adopt(vm.id, vm.pid!, this.fleet.runDir(vm.id));
  }

  private async adopt(vm: VmRecord, proc: VmmProcess): Promise<void> {
    const cancel = new AbortController();
    const restore = vm.suspendedState ? { origin: vm.origin, snapshot: null, state: vm.suspendedState } : null;
    const ctx = newBootContext(this.fleet.deps, vm, this.fleet.runDir(vm.id), cancel.signal, {}, restore);
    ctx.lease = await this.o.network.lease(vm.id);
    ctx.tap = vm.tap;
    ctx.process = proc;
    ctx.tail = new ConsoleTail(join(this.fleet.runDir(vm.id), CONSOLE_LOG), { offset: vm.consoleOffset, pollMs: 50, rotateAtBytes: CONSOLE_ROTATE_BYTES }).start();
    for (const want of vm.spec.volumes) {
      const rec = this.o.store.getVolume(want.name);
      if (rec) ctx.volumes.push({ path: this.o.volumes.pathOf(want.name), uuid: rec.uuid, mountPath: want.mountPath, readOnly: want.readOnly });
    }
    // A VM running from its own saved state halts through restore-vmm, which removes it.
    const done = restore ? ADOPT.done.map((s) => (s.name === 'launch-vmm' ? restoreVmm : s)) : ADOPT.done;
    await this.fleet.supervisor.adopt(ctx, done, ADOPT.redo, cancel);
    if (vm.state === 'running') await this.goOn(vm, proc);
    if (vm.state === 'stopping') {
      void this.fleet.locks
        .run(vm.id, async () => {
          const ended = await this.fleet.supervisor.end(vm.id, { graceful: true, timeoutMs: vm.spec.stopTimeoutMs });
          const now = this.fleet.records.get(vm.id);
          if (ended) this.fleet.records.save(transition(now, 'stopped', this.o.clock.now(), this.fleet.supervisor.stoppedFacts(ended.exitCode, null)));
        })
        .catch((e: unknown) => this.o.log(`stopping adopted VM ${vm.name}: ${String(e)}`));
    }
  }

  /**
   * A running VM runs on: a save (template, snapshot) that the crash interrupted left it
   * paused with its app frozen, so it is resumed and the agent thaws the app (both are
   * no-ops for a VM that was simply running).
   */
  private async goOn(vm: VmRecord, proc: VmmProcess): Promise<void> {
    try {
      await proc.resume();
      const agent = new GuestAgent(await proc.openAgent());
      try {
        await agent.thaw(THAW_TIMEOUT_MS);
      } finally {
        agent.close();
      }
    } catch (e) {
      this.o.log(`adopted VM ${vm.name}: could not make sure it runs on (resume, thaw): ${messageOf(e)}`);
    }
  }

  private async cleanDead(vm: VmRecord, reason?: string): Promise<void> {
    await this.killStray(vm);
    if (vm.tap) await this.o.network.deleteTap(vm.tap).catch(() => undefined);
    this.fleet.detachVolumes(vm);
    const to = vm.state === 'stopping' ? 'stopped' : 'failed';
    const why = reason ?? (vm.state === 'booting' && vm.restoredFrom !== null ? 'its restore was interrupted by a daemon restart' : 'the VM ended while the daemon was down');
    this.fleet.records.save(transition(vm, to, this.o.clock.now(), this.fleet.supervisor.stoppedFacts(null, to === 'failed' ? why : null)));
  }

  /** A create the crash interrupted: what its steps made, then its record. */
  private async undoCreate(vm: VmRecord): Promise<void> {
    if (vm.tap) await this.o.network.deleteTap(vm.tap).catch(() => undefined);
    await this.fleet.forget(vm);
  }

  private async killStray(vm: VmRecord): Promise<void> {
    const proc = vm.pid ? await this.adoptProcess(vm) : null;
    if (proc) await proc.kill();
  }

  private async removeOrphans(): Promise<void> {
    const vms = this.fleet.records.list();
    const ids = new Set(vms.map((v) => v.id));
    const live = new Set(vms.filter((v) => this.fleet.supervisor.has(v.id)).map((v) => v.id));
    const liveTaps = new Set(vms.filter((v) => live.has(v.id)).map((v) => v.tap));
    for (const tap of await this.o.network.listTaps()) {
      if (!liveTaps.has(tap)) {
        this.o.log(`removing orphaned tap ${tap}`);
        await this.o.network.deleteTap(tap).catch(() => undefined);
      }
    }
    for (const vmId of this.o.network.leasedVmIds()) {
      if (!ids.has(vmId)) await this.o.network.release(vmId);
    }
    for (const name of this.o.drivers.names()) {
      for (const line of await this.o.drivers.get(name).removeOrphans(this.o.vmsDir, live)) this.o.log(line);
    }
    for (const dir of await readdir(this.o.vmsDir).catch(() => [] as string[])) {
      if (ids.has(dir) || dir.startsWith('fg-') || dir.startsWith('.')) continue;
      await rm(join(this.o.vmsDir, dir), { recursive: true, force: true });
    }
    const snapshots = new Set(this.o.store.listSnapshots().map((s) => s.name));
    for (const dir of await readdir(this.o.snapshotsDir).catch(() => [] as string[])) {
      if (snapshots.has(dir)) continue;
      this.o.log(`removing snapshot files nothing refers to: ${dir}`);
      await rm(join(this.o.snapshotsDir, dir), { recursive: true, force: true });
    }
    for (const s of this.o.store.listSnapshots()) {
      if (!(await exists(s.state.dir))) {
        this.o.log(`forgetting ${s.kind} ${s.name}: its files are gone`);
        this.o.store.deleteSnapshot(s.name);
      }
    }
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
