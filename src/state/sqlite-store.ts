import Database from 'better-sqlite3';
import type { PoolRecord, ServiceEvent, ServiceRecord, SnapshotKind, SnapshotRecord, VmRecord, VmState, VolumeRecord } from '../core/models.js';
import type { IpLease, LeaseStore, StateStore } from '../core/ports.js';
import { MIGRATIONS } from './migrations.js';

interface VmRow {
  record: string;
}
interface VolumeRow {
  name: string;
  size_mib: number;
  uuid: string;
  created_at: string;
  attached_to: string | null;
}
interface LeaseRow {
  ip: string;
  vm_id: string;
  mac: string;
  leased_at: string;
}

/**
 * The daemon's state in one SQLite file (WAL, synchronous=FULL: a transition the API
 * reported is on disk). Every VM transition is one UPDATE; the IP lease table's primary
 * key makes handing out one address twice impossible, not just unlikely.
 */
export class SqliteStore implements StateStore, LeaseStore {
  readonly db: Database.Database;

  constructor(path: string, opts: { readonly?: boolean } = {}) {
    this.db = new Database(path, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
    if (!opts.readonly) {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      this.migrate();
    }
  }

  private migrate(): void {
    const current = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = current; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  // ---------- VMs ----------

  insertVm(vm: VmRecord): void {
    this.db
      .prepare('INSERT INTO vms (id, name, state, image_ref, record, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(vm.id, vm.name, vm.state, vm.spec.image, JSON.stringify(vm), vm.createdAt, vm.updatedAt);
  }

  updateVm(vm: VmRecord): void {
    const r = this.db
      .prepare('UPDATE vms SET name = ?, state = ?, image_ref = ?, record = ?, updated_at = ? WHERE id = ?')
      .run(vm.name, vm.state, vm.spec.image, JSON.stringify(vm), vm.updatedAt, vm.id);
    if (r.changes !== 1) throw new Error(`VM ${vm.id} is not in the store`);
  }

  deleteVm(id: string): void {
    this.db.prepare('DELETE FROM vms WHERE id = ?').run(id);
  }

  getVm(idOrName: string): VmRecord | null {
    const row = this.db.prepare('SELECT record FROM vms WHERE id = ? OR name = ?').get(idOrName, idOrName) as VmRow | undefined;
    return row ? (JSON.parse(row.record) as VmRecord) : null;
  }

  listVms(filter: { state?: VmState; imageRef?: string } = {}): VmRecord[] {
    const where: string[] = [];
    const args: string[] = [];
    if (filter.state) {
      where.push('state = ?');
      args.push(filter.state);
    }
    if (filter.imageRef) {
      where.push('image_ref = ?');
      args.push(filter.imageRef);
    }
    const sql = `SELECT record FROM vms ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, id`;
    return (this.db.prepare(sql).all(...args) as VmRow[]).map((r) => JSON.parse(r.record) as VmRecord);
  }

  // ---------- IP leases ----------

  leaseFor(vmId: string): IpLease | null {
    const r = this.db.prepare('SELECT * FROM ip_leases WHERE vm_id = ?').get(vmId) as LeaseRow | undefined;
    return r ? { ip: r.ip, vmId: r.vm_id, mac: r.mac, leasedAt: r.leased_at } : null;
  }

  listLeases(): IpLease[] {
    return (this.db.prepare('SELECT * FROM ip_leases ORDER BY ip').all() as LeaseRow[]).map((r) => ({
      ip: r.ip,
      vmId: r.vm_id,
      mac: r.mac,
      leasedAt: r.leased_at,
    }));
  }

  /** Takes the first free address of `candidates` for vmId, atomically; null when none is free. */
  takeLease(vmId: string, candidates: Iterable<string>, macFor: (ip: string) => string, now: string): IpLease | null {
    return this.transaction(() => {
      const existing = this.leaseFor(vmId);
      if (existing) return existing;
      const used = new Set((this.db.prepare('SELECT ip FROM ip_leases').all() as { ip: string }[]).map((r) => r.ip));
      for (const ip of candidates) {
        if (used.has(ip)) continue;
        const mac = macFor(ip);
        this.db.prepare('INSERT INTO ip_leases (ip, vm_id, mac, leased_at) VALUES (?, ?, ?, ?)').run(ip, vmId, mac, now);
        return { ip, vmId, mac, leasedAt: now };
      }
      return null;
    });
  }

  /** The address handed out most recently: allocation continues after it, so a freed address rests. */
  lastLeasedIp(): string | null {
    const r = this.db.prepare('SELECT ip FROM ip_leases ORDER BY leased_at DESC, rowid DESC LIMIT 1').get() as { ip: string } | undefined;
    return r?.ip ?? null;
  }

  releaseLease(vmId: string): void {
    this.db.prepare('DELETE FROM ip_leases WHERE vm_id = ?').run(vmId);
  }

  // ---------- volumes ----------

  private volume(r: VolumeRow): VolumeRecord {
    return { name: r.name, sizeMiB: r.size_mib, uuid: r.uuid, createdAt: r.created_at, attachedTo: r.attached_to };
  }

  getVolume(name: string): VolumeRecord | null {
    const r = this.db.prepare('SELECT * FROM volumes WHERE name = ?').get(name) as VolumeRow | undefined;
    return r ? this.volume(r) : null;
  }

  listVolumes(): VolumeRecord[] {
    return (this.db.prepare('SELECT * FROM volumes ORDER BY name').all() as VolumeRow[]).map((r) => this.volume(r));
  }

  insertVolume(v: VolumeRecord): void {
    this.db
      .prepare('INSERT INTO volumes (name, size_mib, uuid, created_at, attached_to) VALUES (?, ?, ?, ?, ?)')
      .run(v.name, v.sizeMiB, v.uuid, v.createdAt, v.attachedTo);
  }

  updateVolume(v: VolumeRecord): void {
    this.db.prepare('UPDATE volumes SET size_mib = ?, attached_to = ? WHERE name = ?').run(v.sizeMiB, v.attachedTo, v.name);
  }

  deleteVolume(name: string): void {
    this.db.prepare('DELETE FROM volumes WHERE name = ?').run(name);
  }

  // ---------- snapshots and templates ----------

  insertSnapshot(s: SnapshotRecord): void {
    this.db
      .prepare('INSERT INTO snapshots (name, kind, template_key, record, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(s.name, s.kind, s.templateKey, JSON.stringify(s), s.createdAt);
  }

  getSnapshot(name: string): SnapshotRecord | null {
    const r = this.db.prepare('SELECT record FROM snapshots WHERE name = ?').get(name) as { record: string } | undefined;
    return r ? (JSON.parse(r.record) as SnapshotRecord) : null;
  }

  templateFor(key: string): SnapshotRecord | null {
    const r = this.db.prepare('SELECT record FROM snapshots WHERE template_key = ?').get(key) as { record: string } | undefined;
    return r ? (JSON.parse(r.record) as SnapshotRecord) : null;
  }

  listSnapshots(kind?: SnapshotKind): SnapshotRecord[] {
    const rows = (kind
      ? this.db.prepare('SELECT record FROM snapshots WHERE kind = ? ORDER BY created_at, name').all(kind)
      : this.db.prepare('SELECT record FROM snapshots ORDER BY created_at, name').all()) as { record: string }[];
    return rows.map((r) => JSON.parse(r.record) as SnapshotRecord);
  }

  deleteSnapshot(name: string): void {
    this.db.prepare('DELETE FROM snapshots WHERE name = ?').run(name);
  }

  // ---------- warm pools ----------

  insertPool(p: PoolRecord): void {
    this.db.prepare('INSERT INTO pools (id, record, created_at) VALUES (?, ?, ?)').run(p.id, JSON.stringify(p), p.createdAt);
  }

  updatePool(p: PoolRecord): void {
    this.db.prepare('UPDATE pools SET record = ? WHERE id = ?').run(JSON.stringify(p), p.id);
  }

  getPool(id: string): PoolRecord | null {
    const r = this.db.prepare('SELECT record FROM pools WHERE id = ?').get(id) as { record: string } | undefined;
    return r ? (JSON.parse(r.record) as PoolRecord) : null;
  }

  listPools(): PoolRecord[] {
    return (this.db.prepare('SELECT record FROM pools ORDER BY created_at, id').all() as { record: string }[]).map((r) => JSON.parse(r.record) as PoolRecord);
  }

  deletePool(id: string): void {
    this.db.prepare('DELETE FROM pools WHERE id = ?').run(id);
  }

  // ---------- services ----------

  insertService(s: ServiceRecord): void {
    this.db.prepare('INSERT INTO services (name, record, created_at) VALUES (?, ?, ?)').run(s.spec.name, JSON.stringify(s), s.createdAt);
  }

  updateService(s: ServiceRecord): void {
    this.db.prepare('UPDATE services SET record = ? WHERE name = ?').run(JSON.stringify(s), s.spec.name);
  }

  getService(name: string): ServiceRecord | null {
    const r = this.db.prepare('SELECT record FROM services WHERE name = ?').get(name) as { record: string } | undefined;
    return r ? (JSON.parse(r.record) as ServiceRecord) : null;
  }

  listServices(): ServiceRecord[] {
    return (this.db.prepare('SELECT record FROM services ORDER BY created_at, name').all() as { record: string }[]).map((r) => JSON.parse(r.record) as ServiceRecord);
  }

  deleteService(name: string): void {
    this.db.prepare('DELETE FROM services WHERE name = ?').run(name);
  }

  addServiceEvent(e: Omit<ServiceEvent, 'id'>): ServiceEvent {
    const r = this.db
      .prepare('INSERT INTO service_events (service, at, kind, message, data) VALUES (?, ?, ?, ?, ?)')
      .run(e.service, e.at, e.kind, e.message, e.data ? JSON.stringify(e.data) : null);
    return { ...e, id: Number(r.lastInsertRowid) };
  }

  serviceEvents(service: string, afterId: number, limit: number): ServiceEvent[] {
    const rows = this.db
      .prepare('SELECT * FROM service_events WHERE service = ? AND id > ? ORDER BY id LIMIT ?')
      .all(service, afterId, limit) as { id: number; service: string; at: string; kind: string; message: string; data: string | null }[];
    return rows.map((r) => ({ ...r, data: r.data ? (JSON.parse(r.data) as Record<string, unknown>) : null }));
  }

  deleteServiceEvents(service: string): void {
    this.db.prepare('DELETE FROM service_events WHERE service = ?').run(service);
  }

  close(): void {
    this.db.close();
  }
}
