import { randomBytes } from 'node:crypto';
import type { VmCommands } from '../commands/vm-commands.js';
import { invalid, messageOf, notFound } from '../errors.js';
import type { PoolRecord, VmRecord } from '../models.js';
import type { SnapshotService } from '../snapshots/snapshot-service.js';
import type { Fleet } from '../supervision/fleet.js';
import { codeCacheOf, specFromRequest } from '../vm-request.js';
import { isActive } from '../vm-state.js';
import { readyAgain, resolveWarm, warmUp, type WarmRequest } from './warm-up.js';

export interface CreatePoolRequest {
  image: string;
  vcpus?: number;
  memMiB?: number;
  env?: Record<string, string>;
  args?: string[] | null;
  driver?: string;
  codeCacheMiB?: number;
  size: number;
  warm?: WarmRequest;
  service?: string | null;
  /** A service's pool warms on the service's port and readiness path. */
  warmOn?: { port: number | null; readinessPath: string | null };
}

export interface PoolStatus {
  pool: PoolRecord;
  /** Paused spares, ready to hand out. */
  ready: string[];
  /** Spares still booting or restoring. */
  starting: string[];
}

export const MAX_POOL_SIZE = 64;
const MAX_BACKOFF_MS = 30_000;

/**
 * How long a pool waits after a hand-out before it makes the next spare. Making one (a
 * restore, its readiness check, its warm-up) takes both cores of this machine for about a
 * second; started at once, it ran beside the first requests to the VM just handed out:
 * measured, the second request's p50 went from 16 to 64 ms.
 */
const REFILL_AFTER_HANDOUT_MS = 500;

/**
 * Warm pools: for a VM spec, keep `size` VMs booted (restored from the spec's template
 * when it has one) and paused, so a create of that spec only resumes one (see
 * spare-handout.ts). The pool refills in the background whenever a spare is taken (half a
 * second later), dies or is removed; spares are ordinary VM records (they count against
 * the limits, persist, and are adopted after a restart), marked with the pool's id.
 */
export class PoolService {
  private readonly refilling = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private readonly handoutTimers = new Map<string, NodeJS.Timeout>();
  private readonly backoff = new Map<string, { ms: number; timer: NodeJS.Timeout | null }>();
  private closed = false;

  constructor(
    private readonly fleet: Fleet,
    private readonly vms: VmCommands,
    private readonly snapshots: SnapshotService,
  ) {
    // A spare taken, stopped or gone: its pool is short of one.
    fleet.records.on('transition', (vm) => this.noteChange(vm));
    fleet.records.on('removed', (vm) => this.noteChange(vm));
  }

  private get o() {
    return this.fleet.o;
  }

  async create(req: CreatePoolRequest): Promise<PoolRecord> {
    if (!Number.isInteger(req.size) || req.size < 0 || req.size > MAX_POOL_SIZE) throw invalid('size', `size must be an integer from 0 to ${MAX_POOL_SIZE}`);
    const image = await this.o.images.get(req.image, 'image');
    const vmm = this.o.drivers.get(req.driver ?? this.o.drivers.defaultName, 'driver');
    const spec = specFromRequest({ ...req, image: req.image }, image, 'pool', { name: vmm.name, maxDisks: vmm.capabilities.maxDisks });
    const pool: PoolRecord = {
      id: randomBytes(4).toString('hex'),
      spec,
      imageDigest: image.digest,
      size: req.size,
      warm: resolveWarm(req.warm, image, req.warmOn ? 'pool.warm' : 'warm', req.warmOn?.port ?? null, req.warmOn?.readinessPath ?? null),
      service: req.service ?? null,
      createdAt: this.o.clock.now().toISOString(),
    };
    this.o.store.insertPool(pool);
    this.refillSoon(pool.id);
    return pool;
  }

  list(): PoolStatus[] {
    return this.o.store.listPools().map((p) => this.status(p));
  }

  get(id: string): PoolStatus {
    const p = this.o.store.getPool(id);
    if (!p) throw notFound('pool', id);
    return this.status(p);
  }

  /** Changes how many spares a pool keeps (a service's pool follows its settings). */
  resize(id: string, size: number): PoolStatus {
    const p = this.get(id).pool;
    if (!Number.isInteger(size) || size < 0 || size > MAX_POOL_SIZE) throw invalid('size', `size must be an integer from 0 to ${MAX_POOL_SIZE}`);
    this.o.store.updatePool({ ...p, size });
    this.refillSoon(id);
    return this.get(id);
  }

  /** Removes a pool and its spares. */
  async remove(id: string): Promise<PoolRecord> {
    const { pool } = this.get(id);
    this.o.store.deletePool(id);
    this.clearBackoff(id);
    await this.refilling.get(id)?.catch(() => undefined);
    for (const vm of this.spares(id)) await this.vms.remove(vm.id, { force: true }).catch((e: unknown) => this.o.log(`removing spare ${vm.name}: ${messageOf(e)}`));
    return pool;
  }

  /** After start-up repair: bring every pool back to its size. */
  start(): void {
    for (const p of this.o.store.listPools()) this.refillSoon(p.id);
  }

  close(): void {
    this.closed = true;
    for (const t of this.handoutTimers.values()) clearTimeout(t);
    this.handoutTimers.clear();
    for (const id of this.backoff.keys()) this.clearBackoff(id);
  }

  /** Resolves when no refill runs or is due (tests and benchmarks wait on it). */
  async settled(): Promise<void> {
    while (this.refilling.size > 0) await Promise.all([...this.refilling.values()].map((p) => p.catch(() => undefined)));
  }

  private spares(id: string): VmRecord[] {
    return this.fleet.records.list().filter((v) => v.pool === id);
  }

  private status(pool: PoolRecord): PoolStatus {
    const spares = this.spares(pool.id);
    return {
      pool,
      ready: spares.filter((v) => v.state === 'paused').map((v) => v.name),
      starting: spares.filter((v) => v.state === 'creating' || v.state === 'booting' || v.state === 'running').map((v) => v.name),
    };
  }

  private noteChange(vm: VmRecord): void {
    const handedOut = vm.origin === 'pool' && vm.pool === null;
    for (const p of this.o.store.listPools()) {
      if (handedOut) this.refillAfterHandout(p.id);
      else if (vm.pool === p.id) this.refillSoon(p.id);
    }
  }

  private refillAfterHandout(id: string): void {
    if (this.closed || this.handoutTimers.has(id)) return;
    const t = setTimeout(() => {
      this.handoutTimers.delete(id);
      this.refillSoon(id);
    }, REFILL_AFTER_HANDOUT_MS);
    t.unref();
    this.handoutTimers.set(id, t);
  }

  private refillSoon(id: string): void {
    if (this.closed) return;
    if (this.refilling.has(id)) {
      this.again.add(id);
      return;
    }
    const b = this.backoff.get(id);
    if (b?.timer) return; // a failed refill waits its turn
    const run = this.refill(id)
      .catch((e: unknown) => this.failed(id, e))
      .finally(() => {
        this.refilling.delete(id);
        if (this.again.delete(id)) this.refillSoon(id);
      });
    this.refilling.set(id, run);
  }

  private failed(id: string, e: unknown): void {
    const prev = this.backoff.get(id);
    const ms = Math.min(MAX_BACKOFF_MS, prev ? prev.ms * 2 : 1000);
    this.o.log(`pool ${id} could not be refilled (${messageOf(e)}); trying again in ${ms} ms`);
    const timer = setTimeout(() => {
      const b = this.backoff.get(id);
      if (b) b.timer = null;
      this.refillSoon(id);
    }, ms);
    timer.unref();
    this.backoff.set(id, { ms, timer });
  }

  private clearBackoff(id: string): void {
    const b = this.backoff.get(id);
    if (b?.timer) clearTimeout(b.timer);
    this.backoff.delete(id);
  }

  /** Starts spares until the pool has its size; removes those of an older build of the image. */
  private async refill(id: string): Promise<void> {
    let pool = this.o.store.getPool(id);
    if (!pool) return;
    const image = await this.o.images.get(pool.spec.image);
    if (image.digest !== pool.imageDigest) {
      pool = { ...pool, imageDigest: image.digest };
      this.o.store.updatePool(pool);
    }
    for (const stale of this.spares(id).filter((v) => v.manifest.digest !== image.digest || !isActive(v.state))) {
      await this.vms.remove(stale.id, { force: true });
    }
    for (let have = this.spares(id).length; have < pool.size && !this.closed && this.o.store.getPool(id); have++) {
      const s = pool.spec;
      const name = `pool-${id}-${randomBytes(3).toString('hex')}`;
      const vm = await this.vms.create(
        { image: s.image, vcpus: s.vcpus, memMiB: s.memMiB, env: s.env, args: s.args, driver: s.driver, name, stopTimeoutMs: s.stopTimeoutMs, ...codeCacheOf(s) },
        'ready',
        {},
        { pool: id },
      );
      // The first spare of a spec becomes its template, so the next ones restore from it.
      if (vm.origin === 'cold') await this.snapshots.templateNow(vm.id).catch((e: unknown) => this.o.log(`no template from spare ${name}: ${messageOf(e)}`));
      // After the template: what warms a spare is the pool's business, not every restore's.
      // Warming only saves its first client time: a spare that was ready but answers a
      // warm-up slowly (a loaded host) is paused unwarmed rather than thrown away.
      if (vm.ip && vm.origin !== 'cold') await readyAgain(vm.ip, image.ready).catch((e: unknown) => this.o.log(`spare ${name}: ${messageOf(e)}`));
      if (vm.ip) await warmUp(vm.ip, pool.warm).catch((e: unknown) => this.o.log(`spare ${name} paused without its warm-up: ${messageOf(e)}`));
      await this.vms.pause(vm.id);
    }
    for (const extra of this.spares(id).slice(pool.size)) await this.vms.remove(extra.id, { force: true });
    this.clearBackoff(id);
  }
}
