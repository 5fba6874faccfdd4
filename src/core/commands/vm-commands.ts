import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { GuestAgent } from '../../guest/guest-agent.js';
import { invalid, messageOf, UigniterError } from '../errors.js';
import type { ImageManifest, VmRecord, VmSpec } from '../models.js';
import type { VmmProcess } from '../ports.js';
import { COLD_BOOT, restorePlanFor } from '../plans/boot-plans.js';
import type { BootMarks, RestoreSource } from '../steps/boot-context.js';
import { takeSpare } from '../pools/spare-handout.js';
import { release, saveState } from '../snapshots/save-state.js';
import type { SnapshotService } from '../snapshots/snapshot-service.js';
import { cloneSpec, specFromRequest, type CreateVmRequest } from '../vm-request.js';
import { isActive, transition } from '../vm-state.js';
import type { Fleet } from '../supervision/fleet.js';
import { checkLimits } from '../supervision/limits.js';
import type { WaitFor } from '../supervision/supervisor.js';

/**
 * What users ask of VMs: create (cold, from a template, or as a clone of a snapshot),
 * start (again, or from a suspension), stop (or suspend), pause, resume, delete. Each
 * runs under the VM's lock; booting is a plan of undoable steps run by the supervisor.
 */
export class VmCommands {
  constructor(
    private readonly fleet: Fleet,
    private readonly snapshots: SnapshotService,
  ) {}

  private get o() {
    return this.fleet.o;
  }

  /**
   * Creates a VM: a warm pool's spare when one fits, else restored from the spec's template
   * when one exists, else booted cold; or a clone of a named snapshot. `pool` marks the VM
   * as a spare of that pool (the pool service makes its spares this way).
   */
  async create(req: CreateVmRequest, wait: WaitFor = 'ready', marks: BootMarks = {}, opts: { pool?: string; service?: string } = {}): Promise<VmRecord> {
    const id = randomBytes(8).toString('hex');
    const { image, spec, restore, wantTemplate } = await this.decide(req, id);
    if (req.snapshot === undefined && req.boot !== 'cold' && opts.pool === undefined) {
      const spare = await takeSpare(this.fleet, image, spec, marks, opts.service ?? null, (spareId) => this.remove(spareId, { force: true }));
      if (spare) return spare;
    }
    const vm = await this.fleet.locks.run('create', async () => {
      if (this.o.store.getVm(spec.name)) throw new UigniterError('already_exists', `a VM named '${spec.name}' already exists`, 'name');
      checkLimits(this.fleet.records.list(), this.o.limits, spec.vcpus, spec.memMiB, true, this.fleet.usageView);
      const record = { ...newRecord(id, spec, image, this.o.clock.now().toISOString()), pool: opts.pool ?? null, service: opts.service ?? null };
      await mkdir(this.fleet.runDir(id), { recursive: true, mode: 0o700 });
      try {
        this.fleet.records.insert(record);
      } catch (e) {
        // No record, no directory: found by the fault suite with the home's disk full,
        // where the insert fails (SQLITE_FULL) after the directory was made.
        await rm(this.fleet.runDir(id), { recursive: true, force: true });
        if ((e as { code?: unknown }).code === 'SQLITE_FULL') {
          throw new UigniterError('internal', `the disk of the daemon's state directory is full (${dirname(this.o.vmsDir)}): the VM record could not be saved (${messageOf(e)})`);
        }
        throw e;
      }
      return record;
    });
    return this.fleet.locks.run(id, async () => {
      try {
        if (wantTemplate) this.snapshots.wantTemplateOf(id);
        const plan = restore ? restorePlanFor(this.o.drivers.get(spec.driver)) : COLD_BOOT;
        const booted = await this.fleet.supervisor.boot(vm, plan, wait, marks, restore);
        // Measured before the answer: the next create counts what this VM holds, not its size.
        if (wait === 'ready') await this.fleet.usage.measure(booted);
        return booted;
      } catch (e) {
        // The plan rolled back what its steps made; a create that failed leaves no record
        // and no directory either (a stop during boot keeps the VM, stopped).
        const now = this.fleet.records.find(id);
        if (now && !this.fleet.supervisor.has(id) && now.state === 'failed') {
          await rm(this.fleet.runDir(id), { recursive: true, force: true });
          this.fleet.records.delete(now);
        }
        throw e;
      }
    });
  }

  /** Works out the spec and how to boot it: a clone, a template restore, or cold. */
  private async decide(req: CreateVmRequest, id: string): Promise<{ image: ImageManifest; spec: VmSpec; restore: RestoreSource | null; wantTemplate: boolean }> {
    if (req.snapshot !== undefined) {
      const snap = this.snapshots.get(req.snapshot, undefined, 'snapshot');
      const name = req.name ?? `${snap.name}-${id.slice(0, 6)}`.replace(/^-+/, '').slice(-63);
      const spec = cloneSpec(req, snap.spec, name);
      const origin = snap.kind === 'template' ? 'template' : 'snapshot';
      return { image: snap.manifest, spec, restore: { origin, snapshot: snap.name, state: snap.state }, wantTemplate: false };
    }
    if (req.image === undefined) throw invalid('image', "missing field 'image': give image (to boot) or snapshot (to clone)");
    const image = await this.o.images.get(req.image, 'image');
    const name = req.name ?? `${image.name.replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '') || 'vm'}-${id.slice(0, 6)}`;
    const vmm = this.o.drivers.get(req.driver ?? this.o.drivers.defaultName, 'driver');
    const spec = specFromRequest(req, image, name, { name: vmm.name, maxDisks: vmm.capabilities.maxDisks });
    const mode = req.boot ?? 'auto';
    const eligible = mode !== 'cold' && vmm.capabilities.snapshot && spec.volumes.length === 0;
    const template = eligible ? this.snapshots.templateFor(image, spec, null) : null;
    if (template) {
      return { image, spec, restore: { origin: 'template', snapshot: template.name, state: template.state }, wantTemplate: false };
    }
    if (mode === 'template') {
      throw new UigniterError('failed_precondition', `no template exists yet for this spec of ${spec.image} (one is made after the first VM of it boots with boot=auto)`, 'boot');
    }
    return { image, spec, restore: null, wantTemplate: eligible && mode === 'auto' && this.o.templates };
  }

  async start(ref: string, wait: WaitFor = 'ready', marks: BootMarks = {}): Promise<VmRecord> {
    return this.fleet.withVm(ref, async (id) => {
      const vm = this.fleet.records.get(id);
      if (vm.state !== 'stopped' && vm.state !== 'failed' && vm.state !== 'suspended') {
        throw new UigniterError('conflict', `VM ${vm.name} is ${vm.state}; only a stopped, failed or suspended VM can be started`);
      }
      checkLimits(this.fleet.records.list(), this.o.limits, vm.spec.vcpus, vm.spec.memMiB, false, this.fleet.usageView);
      await mkdir(this.fleet.runDir(id), { recursive: true, mode: 0o700 });
      if (vm.state === 'suspended' && vm.suspendedState) {
        // Fly's suspend: the same machine continues where it was, with the clock and
        // entropy renewed.
        const restore: RestoreSource = { origin: vm.origin, snapshot: null, state: vm.suspendedState };
        return this.fleet.supervisor.boot(vm, restorePlanFor(this.o.drivers.get(vm.spec.driver)), wait, marks, restore);
      }
      return this.fleet.supervisor.boot(vm, COLD_BOOT, wait, marks);
    });
  }

  /** Stops a VM: SIGTERM to its app, forced off after the timeout. With suspend, saves it instead. */
  async stop(ref: string, opts: { timeoutMs?: number; suspend?: boolean } = {}): Promise<VmRecord> {
    return this.fleet.withVm(ref, (id) => (opts.suspend ? this.suspendLocked(id) : this.stopLocked(id, opts.timeoutMs)));
  }

  private async stopLocked(id: string, timeoutMs?: number): Promise<VmRecord> {
    const vm = this.fleet.records.get(id);
    if (vm.state === 'suspended') {
      // Stopping a suspended VM discards its saved state: the next start boots cold.
      if (vm.suspendedState) await rm(vm.suspendedState.dir, { recursive: true, force: true });
      const stopped = transition(vm, 'stopped', this.o.clock.now(), { suspendedState: null, stoppedAt: this.o.clock.now().toISOString() });
      this.fleet.records.save(stopped);
      return stopped;
    }
    if (!this.fleet.supervisor.has(id)) {
      if (isActive(vm.state)) {
        // Only after a failed adoption; the VMM is already gone.
        const stopped = transition(vm, 'stopped', this.o.clock.now(), this.fleet.supervisor.stoppedFacts(null, null));
        this.fleet.records.save(stopped);
        return stopped;
      }
      return vm;
    }
    const paused = vm.state === 'paused';
    if (vm.state !== 'booting') this.fleet.records.save(transition(vm, 'stopping', this.o.clock.now()));
    const ended = await this.fleet.supervisor.end(id, { graceful: true, timeoutMs: timeoutMs ?? vm.spec.stopTimeoutMs }, paused);
    if (!ended) return this.fleet.records.get(id);
    const stopped = transition(this.fleet.records.get(id), 'stopped', this.o.clock.now(), this.fleet.supervisor.stoppedFacts(ended.exitCode, ended.timedOut ? 'forced off after the stop timeout' : null));
    this.fleet.records.save(stopped);
    return stopped;
  }

  /** Saves memory and device state into the VM's directory and ends its VMM; start resumes it. */
  private async suspendLocked(id: string): Promise<VmRecord> {
    const { vm, proc } = this.fleet.processOf(id, 'suspended');
    if (!this.o.drivers.get(vm.spec.driver).capabilities.snapshot) {
      throw new UigniterError('failed_precondition', `driver ${vm.spec.driver} cannot suspend VMs`, 'suspend');
    }
    const dir = `${this.fleet.runDir(id)}/saved-${vm.boots}-${randomBytes(3).toString('hex')}`;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    let saved;
    try {
      saved = await saveState(this.fleet, id, proc, dir, vm.state === 'paused');
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
    try {
      this.fleet.records.save(transition(this.fleet.records.get(id), 'stopping', this.o.clock.now()));
      await this.fleet.supervisor.end(id, { graceful: false });
    } catch (e) {
      await release(proc, null, false).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
    // The guest still has its volumes mounted in the saved memory: they stay its own.
    for (const v of vm.spec.volumes) {
      const rec = this.o.store.getVolume(v.name);
      if (rec) this.o.store.updateVolume({ ...rec, attachedTo: id });
    }
    const suspended = transition(this.fleet.records.get(id), 'suspended', this.o.clock.now(), {
      ...this.fleet.supervisor.stoppedFacts(null, null),
      suspendedState: saved,
    });
    this.fleet.records.save(suspended);
    return suspended;
  }

  pause(ref: string): Promise<VmRecord> {
    return this.fleet.withVm(ref, async (id) => {
      const { vm, proc } = this.fleet.processOf(id, 'paused');
      if (vm.state === 'paused') return vm;
      await proc.pause();
      const paused = transition(vm, 'paused', this.o.clock.now());
      this.fleet.records.save(paused);
      return paused;
    });
  }

  resume(ref: string): Promise<VmRecord> {
    return this.fleet.withVm(ref, async (id) => {
      const { vm, proc } = this.fleet.processOf(id, 'resumed');
      if (vm.state === 'running') return vm;
      await proc.resume();
      const running = transition(vm, 'running', this.o.clock.now());
      this.fleet.records.save(running);
      await this.syncClock(vm, proc);
      return running;
    });
  }

  /** The guest's clock stood still while it was paused: the agent sets it to the host's. */
  private async syncClock(vm: VmRecord, proc: VmmProcess): Promise<void> {
    let agent: GuestAgent | null = null;
    try {
      agent = new GuestAgent(await proc.openAgent());
      await agent.clock(this.o.clock.now().getTime());
    } catch (e) {
      this.o.log(`VM ${vm.name} resumed, but its clock could not be set: ${messageOf(e)}`);
    } finally {
      agent?.close();
    }
  }

  async remove(ref: string, opts: { force?: boolean; deleteVolumes?: boolean } = {}): Promise<VmRecord> {
    return this.fleet.withVm(ref, async (id) => {
      let vm = this.fleet.records.get(id);
      if (isActive(vm.state) || this.fleet.supervisor.has(id)) vm = await this.stopLocked(id, opts.force ? 0 : undefined);
      await this.fleet.forget(vm);
      if (opts.deleteVolumes) {
        for (const v of vm.spec.volumes) {
          const users = this.fleet.records.list().filter((o) => o.spec.volumes.some((w) => w.name === v.name));
          if (users.length > 0) continue; // another VM still names it
          this.o.store.deleteVolume(v.name);
          await this.o.volumes.remove(v.name);
        }
      }
      return vm;
    });
  }

  /** Daemon shutdown: stop every VM, or leave them running for the next daemon to adopt. */
  async shutdown(stopVms: boolean): Promise<void> {
    if (!stopVms) return this.fleet.supervisor.release();
    await Promise.all(this.fleet.supervisor.ids().map((id) => this.stop(id).catch((e: unknown) => this.o.log(`stopping ${id}: ${String(e)}`))));
  }
}

export function newRecord(id: string, spec: VmSpec, image: ImageManifest, now: string): VmRecord {
  return {
    id,
    name: spec.name,
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
    origin: 'cold',
    restoredFrom: null,
    suspendedState: null,
    pool: null,
    service: null,
    createdAt: now,
    updatedAt: now,
    stateChangedAt: now,
    startedAt: null,
    readyAt: null,
    stoppedAt: null,
  };
}
