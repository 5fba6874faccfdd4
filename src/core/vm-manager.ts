import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConsoleTail } from '../guest/console-tail.js';
import type { GuestEvent } from '../guest/console-events.js';
import { CONSOLE_LOG } from './guest-boot.js';
import { invalid, messageOf, notFound, UigniterError } from './errors.js';
import { KeyedMutex } from './keyed-mutex.js';
import type { VmRecord, VmState } from './models.js';
import { Plan } from './plan.js';
import { newBootContext, type BootContext, type BootDeps, type BootMarks } from './steps/boot-context.js';
import { LAUNCH_STEPS, READY_STEPS } from './steps/index.js';
import { specFromRequest, type CreateVmRequest } from './vm-request.js';
import { isActive, transition } from './vm-state.js';

export interface ManagerLimits {
  maxVms: number;
  /** Sum of vCPUs of VMs that are up. */
  maxVcpus: number;
  /** Sum of memory of VMs that are up. */
  maxMemMiB: number;
}

export interface ManagerOptions extends Omit<BootDeps, 'save'> {
  vmsDir: string;
  limits: ManagerLimits;
  /** Testing aid: make the boot plan fail right after the named step ran. */
  failAfterStep?: string;
}

export type WaitFor = 'ready' | 'launched';

/** A VM whose VMM this process watches. */
interface LiveVm {
  phase: 'booting' | 'running' | 'stopping';
  plan: Plan<BootContext>;
  cancel: AbortController;
  exitEvent: Extract<GuestEvent, { event: 'exit' }> | null;
  /** Settles when the boot reached ready or was rolled back. */
  booted: Promise<void>;
}

export interface ManagerEvents {
  transition: [vm: VmRecord, from: VmState | null];
  booted: [vm: VmRecord, ms: number];
  removed: [vm: VmRecord];
}

/**
 * The VM lifecycle: create, start, stop, delete, and the repair of what a crash left.
 * Requests on one VM run one at a time; every state change is persisted before it is
 * reported; a boot is a plan of undoable steps, so a failure leaves nothing behind.
 */
export class VmManager extends EventEmitter<ManagerEvents> {
  private readonly locks = new KeyedMutex();
  private readonly live = new Map<string, LiveVm>();
  private readonly deps: BootDeps;
  private changes = 0;

  constructor(private readonly o: ManagerOptions) {
    super();
    this.deps = { ...o, save: (vm) => this.save(vm) };
  }

  // ---------- queries ----------

  get(ref: string): VmRecord {
    const vm = this.o.store.getVm(ref);
    if (!vm) throw notFound('VM', ref);
    return vm;
  }

  list(): VmRecord[] {
    return this.o.store.listVms();
  }

  /** Grows with every change of any VM: lets readers cache what they derive from list(). */
  get version(): number {
    return this.changes;
  }

  consoleLogPath(ref: string): string {
    return join(this.runDir(this.get(ref).id), CONSOLE_LOG);
  }

  runDir(id: string): string {
    return join(this.o.vmsDir, id);
  }

  // ---------- commands ----------

  async create(req: CreateVmRequest, wait: WaitFor = 'ready', marks: BootMarks = {}): Promise<VmRecord> {
    const image = await this.o.images.get(req.image);
    const id = randomBytes(8).toString('hex');
    const name = req.name ?? `${image.name.replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '') || 'vm'}-${id.slice(0, 6)}`;
    const spec = specFromRequest(req, image, name);
    const vm = await this.locks.run('create', async () => {
      if (this.o.store.getVm(name)) throw new UigniterError('already_exists', `a VM named '${name}' already exists`, 'name');
      this.checkLimits(spec.vcpus, spec.memMiB, true);
      const now = this.o.clock.now().toISOString();
      const record: VmRecord = {
        id,
        name,
        spec,
        state: 'creating',
        manifest: image,
        ip: null,
        mac: null,
        tap: null,
        pid: null,
        boots: 0,
        consoleOffset: 0,
        exitCode: null,
        error: null,
        bootMs: null,
        createdAt: now,
        updatedAt: now,
        stateChangedAt: now,
        startedAt: null,
        readyAt: null,
        stoppedAt: null,
      };
      await mkdir(this.runDir(id), { recursive: true, mode: 0o700 });
      this.o.store.insertVm(record);
      this.changes++;
      this.emit('transition', record, null);
      return record;
    });
    return this.locks.run(id, async () => {
      try {
        return await this.boot(vm, wait, marks);
      } catch (e) {
        // A create that failed leaves nothing: no record, no directory, no lease.
        if (!this.live.has(id)) await this.forget(this.o.store.getVm(id) ?? vm);
        throw e;
      }
    });
  }

  async start(ref: string, wait: WaitFor = 'ready', marks: BootMarks = {}): Promise<VmRecord> {
    const { id } = this.get(ref);
    return this.locks.run(id, async () => {
      const vm = this.get(id);
      if (vm.state !== 'stopped' && vm.state !== 'failed') {
        throw new UigniterError('conflict', `VM ${vm.name} is ${vm.state}; only a stopped or failed VM can be started`);
      }
      this.checkLimits(vm.spec.vcpus, vm.spec.memMiB, false);
      await mkdir(this.runDir(id), { recursive: true, mode: 0o700 });
      return this.boot(vm, wait, marks);
    });
  }

  async stop(ref: string, timeoutMs?: number): Promise<VmRecord> {
    const { id } = this.get(ref);
    return this.locks.run(id, () => this.stopLocked(id, timeoutMs));
  }

  async remove(ref: string, opts: { force?: boolean; deleteVolumes?: boolean } = {}): Promise<VmRecord> {
    const { id } = this.get(ref);
    return this.locks.run(id, async () => {
      let vm = this.get(id);
      if (isActive(vm.state) || this.live.has(id)) vm = await this.stopLocked(id, opts.force ? 0 : undefined);
      await this.forget(vm);
      if (opts.deleteVolumes) {
        for (const v of vm.spec.volumes) {
          const users = this.o.store.listVms().filter((o) => o.spec.volumes.some((w) => w.name === v.name));
          if (users.length > 0) continue; // another VM still names it
          this.o.store.deleteVolume(v.name);
          await this.o.volumes.remove(v.name);
        }
      }
      return vm;
    });
  }

  // ---------- internals ----------

  private save(vm: VmRecord): void {
    const before = this.o.store.getVm(vm.id);
    this.o.store.updateVm(vm);
    this.changes++;
    if (before && before.state !== vm.state) this.emit('transition', vm, before.state);
  }

  private checkLimits(vcpus: number, memMiB: number, newVm: boolean): void {
    const all = this.o.store.listVms();
    const l = this.o.limits;
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

  private planHooks() {
    return {
      afterStep: (name: string) => {
        if (this.o.failAfterStep === name) throw new UigniterError('internal', `injected failure after step ${name}`);
      },
      onUndoError: (name: string, e: unknown) => this.o.log(`undo of step ${name} failed: ${messageOf(e)}`),
    };
  }

  /** Runs the boot plan: launch under the VM's lock, then (maybe in the background) wait for ready. */
  private async boot(vm: VmRecord, wait: WaitFor, marks: BootMarks): Promise<VmRecord> {
    const cancel = new AbortController();
    const ctx = newBootContext(this.deps, vm, this.runDir(vm.id), cancel.signal, marks);
    const plan = new Plan(ctx, this.planHooks());
    try {
      await plan.run(LAUNCH_STEPS);
    } catch (e) {
      this.markFailed(ctx.vm, e);
      throw e;
    }
    let settle!: () => void;
    const live: LiveVm = { phase: 'booting', plan, cancel, exitEvent: null, booted: new Promise((r) => (settle = r)) };
    this.live.set(vm.id, live);
    this.watch(vm.id, live);
    const ready = this.finishBoot(vm.id, live).finally(() => settle());
    if (wait === 'ready') {
      await ready;
    } else {
      ready.catch((e: unknown) => this.o.log(`VM ${vm.name} did not boot: ${messageOf(e)}`));
    }
    return ctx.vm;
  }

  private async finishBoot(id: string, live: LiveVm): Promise<void> {
    const ctx = live.plan.ctx;
    try {
      await live.plan.run(READY_STEPS);
      live.phase = 'running';
      if (ctx.vm.bootMs !== null) this.emit('booted', ctx.vm, ctx.vm.bootMs);
    } catch (e) {
      // The plan has rolled back: the VMM is gone, the tap deleted, a new lease returned.
      this.live.delete(id);
      if (live.cancel.signal.aborted) {
        this.save(transition(this.o.store.getVm(id) ?? ctx.vm, 'stopped', this.o.clock.now(), this.stoppedFacts(null, null)));
        return;
      }
      this.markFailed(this.o.store.getVm(id) ?? ctx.vm, e, live.exitEvent?.code ?? null);
      throw e;
    }
  }

  private markFailed(vm: VmRecord, e: unknown, exitCode: number | null = null): void {
    const current = this.o.store.getVm(vm.id);
    if (!current) return;
    const state = current.state === 'creating' || isActive(current.state) ? 'failed' : current.state;
    this.save(transition(current, state, this.o.clock.now(), { ...this.stoppedFacts(exitCode, messageOf(e)) }));
  }

  private stoppedFacts(exitCode: number | null, error: string | null): Partial<VmRecord> {
    return { pid: null, tap: null, exitCode, error, stoppedAt: this.o.clock.now().toISOString() };
  }

  /** Follows the VM's exit events and its VMM's end, for VMs that end on their own. */
  private watch(id: string, live: LiveVm): void {
    const ctx = live.plan.ctx;
    ctx.tail?.on('event', (e) => {
      if (e.event === 'exit') live.exitEvent = e;
    });
    void ctx.process?.exited.then(() =>
      this.locks.run(id, async () => {
        if (this.live.get(id) !== live || live.phase !== 'running') return; // a stop or the boot handles it
        await ctx.tail?.pump();
        this.live.delete(id);
        await live.plan.unwind('halt');
        const code = live.exitEvent?.code ?? null;
        const vm = this.o.store.getVm(id);
        if (!vm) return;
        const clean = code === 0;
        const error = clean ? null : code === null ? 'the VM ended unexpectedly' : `the app exited with status ${code}`;
        this.save(transition(vm, clean ? 'stopped' : 'failed', this.o.clock.now(), this.stoppedFacts(code, error)));
        this.o.log(`VM ${vm.name} ended on its own (${error ?? 'status 0'})`);
      }),
    );
  }

  private async stopLocked(id: string, timeoutMs?: number): Promise<VmRecord> {
    const vm = this.get(id);
    const live = this.live.get(id);
    if (!live) {
      if (isActive(vm.state)) {
        // Only after a failed adoption; the VMM is already gone.
        const stopped = transition(vm, 'stopped', this.o.clock.now(), this.stoppedFacts(null, null));
        this.save(stopped);
        return stopped;
      }
      return vm;
    }
    if (live.phase === 'booting') {
      live.cancel.abort();
      await live.booted;
      return this.get(id);
    }
    const ctx = live.plan.ctx;
    live.phase = 'stopping';
    this.save(transition(this.get(id), 'stopping', this.o.clock.now()));
    const proc = ctx.process!;
    const deadline = timeoutMs ?? vm.spec.stopTimeoutMs;
    let forced = false;
    if (deadline > 0) {
      await proc.requestStop().catch(() => undefined);
      // The guest init gives the app the VM's own stop timeout; allow a little more here.
      const ended = await Promise.race([proc.exited.then(() => true), sleep(deadline + 1000).then(() => false)]);
      if (!ended) forced = true;
    } else {
      forced = true;
    }
    if (forced) await proc.kill();
    await proc.exited;
    await ctx.tail?.pump();
    this.live.delete(id);
    await live.plan.unwind('halt');
    const code = live.exitEvent?.code ?? null;
    const stopped = transition(this.get(id), 'stopped', this.o.clock.now(), this.stoppedFacts(code, forced ? 'forced off after the stop timeout' : null));
    this.save(stopped);
    return stopped;
  }

  /** Removes a VM that is not running: its lease, its directory, its record. */
  private async forget(vm: VmRecord): Promise<void> {
    if (vm.tap) await this.o.network.deleteTap(vm.tap).catch(() => undefined);
    for (const v of vm.spec.volumes) {
      const rec = this.o.store.getVolume(v.name);
      if (rec?.attachedTo === vm.id) this.o.store.updateVolume({ ...rec, attachedTo: null });
    }
    this.o.network.setName(vm.name, null);
    await this.o.network.release(vm.id);
    await rm(this.runDir(vm.id), { recursive: true, force: true });
    this.o.store.deleteVm(vm.id);
    this.changes++;
    this.emit('removed', vm);
  }

  // ---------- start-up repair ----------

  /**
   * Compares the stored state with what runs: VMs whose VMM still runs are adopted (their
   * ports published again), those whose VMM died are marked and cleaned, a create that a
   * crash interrupted is undone, and taps, leases, directories and processes nobody owns
   * are removed.
   */
  async reconcile(): Promise<{ adopted: string[]; ended: string[]; removed: string[] }> {
    const report = { adopted: [] as string[], ended: [] as string[], removed: [] as string[] };
    for (const vm of this.o.store.listVms()) {
      if (vm.state === 'creating') {
        await this.killStray(vm);
        await this.forget(vm);
        report.removed.push(vm.name);
        continue;
      }
      if (!isActive(vm.state)) continue;
      const proc = vm.pid ? await this.o.vmm.adopt(vm.id, vm.pid, this.runDir(vm.id)) : null;
      if (proc) {
        await this.adopt(vm, proc);
        report.adopted.push(vm.name);
      } else {
        await this.cleanDead(vm);
        report.ended.push(vm.name);
      }
    }
    await this.removeOrphans();
    return report;
  }

  private async adopt(vm: VmRecord, proc: NonNullable<BootContext['process']>): Promise<void> {
    const cancel = new AbortController();
    const ctx = newBootContext(this.deps, vm, this.runDir(vm.id), cancel.signal);
    ctx.lease = await this.o.network.lease(vm.id);
    ctx.tap = vm.tap;
    ctx.process = proc;
    ctx.tail = new ConsoleTail(join(this.runDir(vm.id), CONSOLE_LOG), { offset: vm.consoleOffset, pollMs: 50 }).start();
    for (const want of vm.spec.volumes) {
      const rec = this.o.store.getVolume(want.name);
      if (rec) ctx.volumes.push({ path: this.o.volumes.pathOf(want.name), uuid: rec.uuid, mountPath: want.mountPath, readOnly: want.readOnly });
    }
    const done = LAUNCH_STEPS.filter((s) => s.name !== 'publish-ports' && s.name !== 'register-name');
    const plan = Plan.adopted(ctx, done, this.planHooks());
    // Port proxies and DNS names lived in the old daemon process: make them again.
    await plan.run(LAUNCH_STEPS.filter((s) => !done.includes(s)));
    let settle!: () => void;
    const live: LiveVm = { phase: vm.state === 'running' ? 'running' : 'booting', plan, cancel, exitEvent: null, booted: new Promise((r) => (settle = r)) };
    this.live.set(vm.id, live);
    this.watch(vm.id, live);
    if (vm.state === 'booting') {
      this.finishBoot(vm.id, live)
        .catch((e: unknown) => this.o.log(`adopted VM ${vm.name} did not boot: ${messageOf(e)}`))
        .finally(() => settle());
    } else {
      settle();
      if (vm.state === 'stopping') {
        live.phase = 'running';
        void this.stop(vm.id).catch((e: unknown) => this.o.log(`stopping adopted VM ${vm.name}: ${messageOf(e)}`));
      }
    }
  }

  private async cleanDead(vm: VmRecord): Promise<void> {
    await this.killStray(vm);
    if (vm.tap) await this.o.network.deleteTap(vm.tap).catch(() => undefined);
    for (const v of vm.spec.volumes) {
      const rec = this.o.store.getVolume(v.name);
      if (rec?.attachedTo === vm.id) this.o.store.updateVolume({ ...rec, attachedTo: null });
    }
    const to = vm.state === 'stopping' ? 'stopped' : 'failed';
    this.save(transition(vm, to, this.o.clock.now(), this.stoppedFacts(null, to === 'failed' ? 'the VM ended while the daemon was down' : null)));
  }

  private async killStray(vm: VmRecord): Promise<void> {
    const proc = vm.pid ? await this.o.vmm.adopt(vm.id, vm.pid, this.runDir(vm.id)) : null;
    if (proc) await proc.kill();
  }

  private async removeOrphans(): Promise<void> {
    const vms = this.o.store.listVms();
    const ids = new Set(vms.map((v) => v.id));
    const activeTaps = new Set(vms.filter((v) => this.live.has(v.id)).map((v) => v.tap));
    for (const tap of await this.o.network.listTaps()) {
      if (!activeTaps.has(tap)) {
        this.o.log(`removing orphaned tap ${tap}`);
        await this.o.network.deleteTap(tap).catch(() => undefined);
      }
    }
    for (const vmId of this.o.network.leasedVmIds()) {
      if (!ids.has(vmId)) await this.o.network.release(vmId);
    }
    for (const p of await this.o.vmm.listRunning(this.o.vmsDir)) {
      if (this.live.has(p.vmId)) continue;
      this.o.log(`killing orphaned VMM of ${p.vmId} (pid ${p.pid})`);
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const dir of await readdir(this.o.vmsDir).catch(() => [] as string[])) {
      if (ids.has(dir) || dir.startsWith('fg-') || dir.startsWith('.')) continue;
      await rm(join(this.o.vmsDir, dir), { recursive: true, force: true });
    }
  }

  /** Daemon shutdown: stop every VM, or leave them running for the next daemon to adopt. */
  async shutdown(stopVms: boolean): Promise<void> {
    const ids = [...this.live.keys()];
    if (stopVms) {
      await Promise.all(ids.map((id) => this.stop(id).catch((e: unknown) => this.o.log(`stopping ${id}: ${messageOf(e)}`))));
    } else {
      for (const id of ids) {
        const live = this.live.get(id);
        if (!live) continue;
        live.plan.ctx.process?.detach();
        await live.plan.ctx.tail?.stop();
        await live.plan.ctx.unpublish?.();
        this.live.delete(id);
      }
    }
  }

  /** Answers a request field check the API cannot express in a schema. */
  static checkWait(v: string | undefined): WaitFor {
    if (v === undefined || v === 'ready') return 'ready';
    if (v === 'launched' || v === 'none') return 'launched';
    throw invalid('wait', "wait must be 'ready' or 'launched'");
  }
}
