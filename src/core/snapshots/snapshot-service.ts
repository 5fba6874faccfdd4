import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import { messageOf, notFound, UigniterError } from '../errors.js';
import type { Fleet } from '../supervision/fleet.js';
import type { ImageManifest, SnapshotKind, SnapshotRecord, VmRecord, VmSpec } from '../models.js';
import { checkName } from '../spec-checks.js';
import { isActive } from '../vm-state.js';
import { probeOnce } from './probe-once.js';
import { release, saveState } from './save-state.js';
import { templateKey, templateName } from './template-key.js';

/** Files of a snapshot being written carry this infix until the record exists. */
export const PARTIAL = '.partial-';

/**
 * Named snapshots of running VMs and the templates the daemon makes for VM specs: taking
 * them (the VM runs on afterwards), listing, and removing them when nothing depends on them.
 */
export class SnapshotService {
  /** VMs booted cold that should become the template of their spec once ready. */
  private readonly wantTemplate = new Set<string>();

  constructor(private readonly fleet: Fleet) {
    fleet.records.on('booted', (vm) => {
      if (!this.wantTemplate.delete(vm.id)) return;
      void this.captureTemplate(vm.id).catch((e: unknown) => fleet.o.log(`no template from VM ${vm.name}: ${messageOf(e)}`));
    });
  }

  list(kind?: SnapshotKind): SnapshotRecord[] {
    return this.fleet.o.store.listSnapshots(kind);
  }

  get(name: string, kind?: SnapshotKind, field?: string): SnapshotRecord {
    const s = this.fleet.o.store.getSnapshot(name);
    if (!s || (kind && s.kind !== kind)) {
      const e = notFound(kind ?? 'snapshot', name);
      throw field ? new UigniterError(e.code, e.message, field) : e;
    }
    return s;
  }

  /** VMs up whose memory maps the snapshot's files. */
  dependents(name: string): string[] {
    return this.fleet.records.list().filter((v) => v.restoredFrom === name && isActive(v.state)).map((v) => v.name);
  }

  async remove(name: string, kind?: SnapshotKind): Promise<SnapshotRecord> {
    const s = this.get(name, kind);
    const users = this.dependents(name);
    if (users.length > 0) {
      throw new UigniterError('in_use', `${s.kind} '${name}' backs the memory of running VM${users.length > 1 ? 's' : ''} ${users.join(', ')}; stop ${users.length > 1 ? 'them' : 'it'} first`);
    }
    this.fleet.o.store.deleteSnapshot(name);
    await rm(this.fleet.snapshotDir(name), { recursive: true, force: true });
    return s;
  }

  /** POST /vm/{id}/snapshot: a named snapshot; the VM runs on (or stays paused). */
  snapshot(ref: string, name: string): Promise<SnapshotRecord> {
    checkName(name, 'name');
    return this.fleet.withVm(ref, (id) => this.capture(id, name, 'snapshot', null));
  }

  /** Saves a VM into a snapshot record (caller holds the VM's lock). */
  private async capture(id: string, name: string, kind: SnapshotKind, key: string | null): Promise<SnapshotRecord> {
    const { vm, proc } = this.fleet.processOf(id, 'snapshotted');
    if (!this.fleet.deps.drivers.get(vm.spec.driver).capabilities.snapshot) {
      throw new UigniterError('failed_precondition', `driver ${vm.spec.driver} cannot take snapshots`);
    }
    if (vm.spec.volumes.length > 0) {
      throw new UigniterError('failed_precondition', `VM ${vm.name} has volumes; a snapshot carries memory and the root's writable layer, not volumes (their disks belong to one VM)`, 'name');
    }
    if (this.fleet.o.store.getSnapshot(name)) throw new UigniterError('already_exists', `a snapshot named '${name}' already exists`, 'name');
    const final = this.fleet.snapshotDir(name);
    const partial = `${final}${PARTIAL}${randomBytes(4).toString('hex')}`;
    await mkdir(partial, { recursive: true, mode: 0o700 });
    const wasPaused = vm.state === 'paused';
    let saved;
    try {
      saved = await saveState(this.fleet, id, proc, partial, wasPaused);
    } catch (e) {
      await rm(partial, { recursive: true, force: true });
      throw e;
    }
    let record: SnapshotRecord | null = null;
    let renamed = false;
    try {
      // Another capture of the same name may have won the race: never touch its files.
      if (this.fleet.o.store.getSnapshot(name)) throw new UigniterError('already_exists', `a snapshot named '${name}' already exists`, 'name');
      await rename(partial, final);
      renamed = true;
      const dir = final;
      record = {
        name,
        kind,
        source: { id: vm.id, name: vm.name },
        spec: { ...vm.spec, ports: [], volumes: [] },
        manifest: vm.manifest,
        state: { ...saved, dir, configDrive: saved.configDrive.replace(partial, final) },
        templateKey: key,
        createdAt: this.fleet.o.clock.now().toISOString(),
      };
      this.fleet.o.store.insertSnapshot(record);
    } catch (e) {
      await rm(partial, { recursive: true, force: true });
      if (renamed) await rm(final, { recursive: true, force: true });
      await release(proc, null, wasPaused).catch(() => undefined);
      throw e;
    }
    await release(proc, null, wasPaused);
    return record;
  }

  // ---------- templates ----------

  /** The template for a VM spec, dropping templates of an image that was rebuilt since. */
  templateFor(image: ImageManifest, spec: VmSpec, compat: string | null): SnapshotRecord | null {
    const store = this.fleet.o.store;
    const imageRef = `${image.name}:${image.tag}`;
    for (const t of store.listSnapshots('template')) {
      if (t.spec.image === imageRef && t.manifest.digest !== image.digest && this.dependents(t.name).length === 0) {
        this.fleet.o.log(`dropping template ${t.name}: image ${imageRef} changed`);
        void this.remove(t.name).catch(() => undefined);
      }
    }
    const t = store.templateFor(templateKey(image, spec));
    if (!t) return null;
    if (compat !== null && t.state.compat !== compat) return null;
    return t;
  }

  /** Marks a VM booting cold to become its spec's template once it is ready. */
  wantTemplateOf(vmId: string): void {
    this.wantTemplate.add(vmId);
  }

  /** Makes the VM its spec's template now, unless the spec has one (the pool's first spare). */
  async templateNow(id: string): Promise<void> {
    this.wantTemplate.delete(id);
    if (!this.fleet.o.templates) return;
    await this.captureTemplate(id);
  }

  /** After one request to its readiness check, the VM is saved as its spec's template. */
  private async captureTemplate(id: string): Promise<void> {
    const vm = this.fleet.records.get(id);
    const key = templateKey(vm.manifest, vm.spec);
    if (this.fleet.o.store.templateFor(key)) return;
    // Several VMs of one spec may become ready together: one template per key, made once.
    await this.fleet.locks.run(`template:${key}`, () => this.captureTemplateOf(id, vm, key));
  }

  private async captureTemplateOf(id: string, vm: VmRecord, key: string): Promise<void> {
    if (this.fleet.o.store.templateFor(key)) return;
    if (vm.ip && vm.manifest.ready.kind !== 'none') await probeOnce(vm.ip, vm.manifest.ready);
    await this.fleet.locks.run(id, async () => {
      const now = this.fleet.records.find(id);
      if (!now || now.state !== 'running' || this.fleet.o.store.templateFor(key)) return;
      const t = await this.capture(id, templateName(key), 'template', key);
      this.fleet.o.log(`template ${t.name} made from VM ${vm.name}`, { bytes: t.state.bytes });
    });
  }

  /** Removes templates of an image (it was removed); refused while a VM runs from one. */
  async dropTemplatesOf(imageRef: string): Promise<void> {
    for (const t of this.list('template')) if (t.spec.image === imageRef) await this.remove(t.name);
  }
}
