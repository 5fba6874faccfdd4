import type { VmCommands } from '../commands/vm-commands.js';
import { messageOf, notFound, UigniterError, invalid } from '../errors.js';
import type { ServiceEvent, ServiceRecord, VmRecord } from '../models.js';
import type { PoolService } from '../pools/pool-service.js';
import type { Replica, ReplicaSource, ServiceGateway } from '../ports.js';
import type { ScalePoint } from '../autoscale/scale-series.js';
import type { Fleet } from '../supervision/fleet.js';
import { ServiceController } from './service-controller.js';
import { serviceSpecFrom, type CreateServiceRequest } from './service-spec.js';
import { codeCacheOf } from '../vm-request.js';

export interface ServiceStatus {
  record: ServiceRecord;
  desired: number;
  ready: number;
  running: number;
  /** Replicas a scale-down paused (scaleDown 'pause'), kept for the next scale-up. */
  paused: number;
  replicas: VmRecord[];
  gateway: string | null;
}

/** Held requests wait this long at the gateway for a replica (a cold boot here takes seconds). */
export const HOLD_TIMEOUT_MS = 60_000;
export const QUEUE_LIMIT = 1000;

/**
 * Services: a name, an image and a replica count kept by a controller each; their pools,
 * their gateways; and the gateway's view of them (ready replicas, wake-ups).
 */
export class ServiceManager implements ReplicaSource {
  private readonly controllers = new Map<string, ServiceController>();

  constructor(
    private readonly fleet: Fleet,
    private readonly vms: VmCommands,
    private readonly pools: PoolService,
    private readonly gateway: ServiceGateway | null,
  ) {
    // A replica that changed state (ended, became ready) is looked at now, not at the next tick.
    fleet.records.on('transition', (vm) => {
      if (vm.service) this.controllers.get(vm.service)?.poke();
    });
  }

  private get o() {
    return this.fleet.o;
  }

  private event(service: string, kind: string, message: string, data: Record<string, unknown> = {}): ServiceEvent {
    this.o.log(`service ${service}: ${message}`);
    return this.o.store.addServiceEvent({ service, at: this.o.clock.now().toISOString(), kind, message, data });
  }

  async create(req: CreateServiceRequest): Promise<ServiceStatus> {
    const image = await this.o.images.get(req.image, 'image');
    const vmm = this.o.drivers.get(this.o.drivers.defaultName);
    const spec = serviceSpecFrom(req, image, { name: vmm.name, maxDisks: vmm.capabilities.maxDisks });
    if (this.o.store.getService(spec.name)) throw new UigniterError('already_exists', `a service named '${spec.name}' already exists`, 'name');
    if (this.o.store.getVm(spec.name)) throw new UigniterError('already_exists', `a VM is named '${spec.name}': a service's name resolves to its replicas`, 'name');
    const now = this.o.clock.now().toISOString();
    let record: ServiceRecord = { spec, desired: spec.replicas.min, poolId: null, gatewayPort: null, createdAt: now, updatedAt: now };
    this.o.store.insertService(record);
    try {
      if (spec.pool && spec.pool.size > 0) {
        const pool = await this.pools.create({ image: spec.vm.image, vcpus: spec.vm.vcpus, memMiB: spec.vm.memMiB, env: spec.vm.env, args: spec.vm.args, driver: spec.vm.driver, ...codeCacheOf(spec.vm), size: spec.pool.size, warm: spec.pool.warm, service: spec.name,
          warmOn: { port: spec.port, readinessPath: spec.health.readiness?.path ?? null },
        });
        record = { ...record, poolId: pool.id };
        this.o.store.updateService(record);
      }
      if (spec.port !== null && this.gateway) {
        const g = await this.gateway.open(spec.name, { hostAddr: spec.gateway.hostAddr, ...(spec.gateway.hostPort ? { hostPort: spec.gateway.hostPort } : {}), queueLimit: QUEUE_LIMIT, holdTimeoutMs: HOLD_TIMEOUT_MS });
        record = { ...record, gatewayPort: g.hostPort };
        this.o.store.updateService(record);
      }
    } catch (e) {
      // Nothing half made: the pool, the gateway and the record go again.
      if (record.poolId) await this.pools.remove(record.poolId).catch(() => undefined);
      await this.gateway?.close(spec.name).catch(() => undefined);
      this.o.store.deleteService(spec.name);
      throw e;
    }
    this.event(spec.name, 'created', `created with ${spec.replicas.min}..${spec.replicas.max} replicas${record.gatewayPort ? `, gateway on port ${record.gatewayPort}` : ''}`, { min: spec.replicas.min, max: spec.replicas.max });
    this.run(spec.name);
    return this.status(spec.name);
  }

  private run(name: string): void {
    const c = new ServiceController(name, this.fleet, this.vms, this.gateway, (kind, message, data) => this.event(name, kind, message, data));
    this.controllers.set(name, c);
    c.start();
  }

  private controller(name: string): ServiceController {
    const c = this.controllers.get(name);
    if (!c || !this.o.store.getService(name)) throw notFound('service', name);
    return c;
  }

  status(name: string): ServiceStatus {
    const record = this.o.store.getService(name);
    if (!record) throw notFound('service', name);
    const c = this.controllers.get(name);
    const counts = c?.counts() ?? { ready: 0, running: 0, paused: 0 };
    return {
      record,
      desired: Math.min(Math.max(record.desired, record.spec.replicas.min), record.spec.replicas.max),
      ...counts,
      replicas: c?.replicas() ?? [],
      gateway: record.gatewayPort ? `http://${record.spec.gateway.hostAddr}:${record.gatewayPort}` : null,
    };
  }

  list(): ServiceStatus[] {
    return this.o.store.listServices().map((s) => this.status(s.spec.name));
  }

  /** Changes the replica bounds and/or the desired count (uigniter service scale). */
  update(name: string, patch: { replicas?: { min?: number; max?: number }; desired?: number }): ServiceStatus {
    const rec = this.o.store.getService(name);
    if (!rec) throw notFound('service', name);
    const min = patch.replicas?.min ?? rec.spec.replicas.min;
    const max = patch.replicas?.max ?? rec.spec.replicas.max;
    if (!Number.isInteger(min) || min < 0 || min > 64) throw invalid('replicas.min', 'replicas.min must be an integer from 0 to 64');
    if (!Number.isInteger(max) || max < 1 || max > 64) throw invalid('replicas.max', 'replicas.max must be an integer from 1 to 64');
    if (min > max) throw invalid('replicas.min', `replicas.min (${min}) is above replicas.max (${max})`);
    let desired = patch.desired ?? rec.desired;
    if (!Number.isInteger(desired) || desired < 0) throw invalid('desired', 'desired must be a non-negative integer');
    desired = Math.min(Math.max(desired, min), max);
    const next: ServiceRecord = { ...rec, spec: { ...rec.spec, replicas: { min, max } }, desired, updatedAt: this.o.clock.now().toISOString() };
    this.o.store.updateService(next);
    this.event(name, 'updated', `replicas ${min}..${max}, desired ${desired}`, { min, max, desired });
    this.controllers.get(name)?.poke();
    return this.status(name);
  }

  async remove(name: string): Promise<ServiceRecord> {
    const rec = this.o.store.getService(name);
    if (!rec) throw notFound('service', name);
    const c = this.controllers.get(name);
    this.controllers.delete(name);
    await c?.stop();
    c?.unpublish();
    await this.gateway?.close(name);
    if (rec.poolId) await this.pools.remove(rec.poolId).catch((e: unknown) => this.o.log(`service ${name}: removing its pool: ${messageOf(e)}`));
    for (const vm of this.fleet.records.list().filter((v) => v.service === name)) await this.vms.remove(vm.id, { force: true });
    this.o.store.deleteService(name);
    this.o.store.deleteServiceEvents(name);
    return rec;
  }

  events(name: string, afterId = 0, limit = 500): ServiceEvent[] {
    this.status(name);
    return this.o.store.serviceEvents(name, afterId, limit);
  }

  metrics(name: string, since = 0): ScalePoint[] {
    return this.controller(name).series.since(since);
  }

  /** After start-up repair: gateways open again on their ports, controllers take over the replicas they find. */
  async start(): Promise<void> {
    for (const rec of this.o.store.listServices()) {
      const spec = rec.spec;
      if (spec.port !== null && this.gateway) {
        try {
          const g = await this.gateway.open(spec.name, { hostAddr: spec.gateway.hostAddr, ...(rec.gatewayPort ? { hostPort: rec.gatewayPort } : {}), queueLimit: QUEUE_LIMIT, holdTimeoutMs: HOLD_TIMEOUT_MS });
          if (g.hostPort !== rec.gatewayPort) this.o.store.updateService({ ...rec, gatewayPort: g.hostPort });
        } catch (e) {
          this.event(spec.name, 'gateway-failed', `its gateway could not open again: ${messageOf(e)}`);
        }
      }
      this.run(spec.name);
    }
  }

  async close(): Promise<void> {
    for (const c of this.controllers.values()) await c.stop();
    this.controllers.clear();
    await this.gateway?.closeAll();
  }

  // ---------- ReplicaSource: what the gateway asks ----------

  ready(service: string): Replica[] {
    return this.controllers.get(service)?.ready() ?? [];
  }

  draining(service: string): Replica[] {
    return this.controllers.get(service)?.draining() ?? [];
  }

  async wake(service: string): Promise<void> {
    this.controller(service).wake();
  }
}
