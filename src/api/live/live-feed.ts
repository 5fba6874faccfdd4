import type { Core } from '../../core/core.js';
import type { ImageService } from '../../core/image-service.js';
import type { VolumeService } from '../../core/volume-service.js';
import { cpuPercent, sampleProcess, type ProcessSample } from '../../util/process-usage.js';
import { imageView, poolView, serviceView, snapshotView, vmView } from '../views.js';
import { probePipeline } from './pipeline-probe.js';
import { probePlant } from './plant-probe.js';

/** One message of the stream: its kind and its JSON-able body. */
export interface FeedMessage {
  event: string;
  data: unknown;
}
export type FeedSubscriber = (m: FeedMessage) => void;

export interface LiveFeedOptions {
  /** How often services and pools are compared with what was last sent (default 1 s). */
  servicesEveryMs?: number;
  /** How often VMM usage, the inventory and the demo are read (default 2 s). */
  usageEveryMs?: number;
}

/**
 * What a dashboard follows, computed once for every connected page: each VM change as it is
 * saved; services, pools, their events and autoscaler ticks each second; VMM CPU and memory,
 * the inventory (images, snapshots, templates, volumes), the image demo's backlog and the
 * industrial example's plant, controllers and alarms every two seconds; the lists only when
 * they changed. Timers run only while someone listens.
 */
export class LiveFeed {
  private readonly subscribers = new Set<FeedSubscriber>();
  private timers: NodeJS.Timeout[] = [];
  private last = new Map<string, string>();
  private lastEventId = new Map<string, number>();
  private lastPointT = new Map<string, number>();
  private usage = new Map<string, { sample: ProcessSample; at: number }>();
  private readonly unhook: (() => void)[] = [];
  private busy = { services: false, usage: false };

  constructor(
    private readonly core: Core,
    private readonly images: ImageService,
    private readonly volumes: VolumeService,
    private readonly options: LiveFeedOptions = {},
  ) {
    const onUpdated = (vm: Parameters<typeof vmView>[0], from: string | null): void => this.broadcast({ event: 'vm', data: { vm: vmView(vm), from } });
    const onRemoved = (vm: { id: string }): void => {
      this.usage.delete(vm.id);
      this.broadcast({ event: 'vm-removed', data: { id: vm.id } });
    };
    core.records.on('updated', onUpdated);
    core.records.on('removed', onRemoved);
    this.unhook.push(
      () => core.records.off('updated', onUpdated),
      () => core.records.off('removed', onRemoved),
    );
  }

  get listeners(): number {
    return this.subscribers.size;
  }

  /** Everything a page needs to draw itself, read at one instant (no await inside). */
  private snapshotNow(inventory: unknown): FeedMessage {
    return {
      event: 'snapshot',
      data: {
        at: new Date().toISOString(),
        vms: this.core.records.list().map(vmView),
        services: this.core.services.list().map(serviceView),
        pools: this.core.pools.list().map(poolView),
        inventory,
      },
    };
  }

  /**
   * Adds a listener; its first message is the snapshot. The snapshot's VMs and services are
   * read and the listener added in one synchronous step, so no change falls between them.
   * Returns its unsubscribe.
   */
  async subscribe(send: FeedSubscriber): Promise<() => void> {
    const inventory = await this.inventory();
    const snapshot = this.snapshotNow(inventory);
    send(snapshot);
    if (this.subscribers.size === 0) {
      this.startTimers();
      // What the only listener just got need not follow it again on the first tick.
      const d = snapshot.data as { services: unknown; pools: unknown; inventory: unknown };
      this.last.set('services', JSON.stringify({ services: d.services }));
      this.last.set('pools', JSON.stringify({ pools: d.pools }));
      this.last.set('inventory', JSON.stringify(d.inventory));
    }
    this.subscribers.add(send);
    return () => {
      if (!this.subscribers.delete(send)) return;
      if (this.subscribers.size === 0) this.stopTimers();
    };
  }

  close(): void {
    this.stopTimers();
    this.subscribers.clear();
    for (const u of this.unhook) u();
  }

  private broadcast(m: FeedMessage): void {
    for (const s of this.subscribers) s(m);
  }

  /** Sends `data` under `event` unless it is what was last sent under `key`. */
  private sendIfChanged(key: string, event: string, data: unknown): void {
    const text = JSON.stringify(data);
    if (this.last.get(key) === text) return;
    this.last.set(key, text);
    this.broadcast({ event, data });
  }

  private startTimers(): void {
    this.last = new Map();
    this.lastEventId = new Map();
    this.lastPointT = new Map();
    // History before a page connected comes from GET /services/{name}/events and /metrics:
    // the stream carries what is new from now on.
    for (const s of this.core.services.list()) this.markSeen(s.record.spec.name);
    const every = (ms: number, what: keyof LiveFeed['busy'], fn: () => Promise<void> | void): NodeJS.Timeout =>
      setInterval(() => {
        if (this.busy[what]) return; // a slow read is not stacked
        this.busy[what] = true;
        void Promise.resolve()
          .then(fn)
          .catch(() => undefined)
          .finally(() => (this.busy[what] = false));
      }, ms);
    this.timers = [every(this.options.servicesEveryMs ?? 1000, 'services', () => this.tickServices()), every(this.options.usageEveryMs ?? 2000, 'usage', () => this.tickUsage())];
  }

  private stopTimers(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  private markSeen(name: string): void {
    this.lastEventId.set(name, this.core.services.events(name, 0, 100_000).at(-1)?.id ?? 0);
    this.lastPointT.set(name, this.core.services.metrics(name).at(-1)?.t ?? 0);
  }

  private tickServices(): void {
    const services = this.core.services.list();
    this.sendIfChanged('services', 'services', { services: services.map(serviceView) });
    this.sendIfChanged('pools', 'pools', { pools: this.core.pools.list().map(poolView) });
    for (const s of services) {
      const name = s.record.spec.name;
      if (!this.lastEventId.has(name)) {
        // A service created while pages listen: all its events and points are new.
        this.lastEventId.set(name, 0);
        this.lastPointT.set(name, 0);
      }
      const events = this.core.services.events(name, this.lastEventId.get(name) ?? 0);
      if (events.length > 0) {
        this.lastEventId.set(name, events.at(-1)!.id);
        this.broadcast({ event: 'service-events', data: { name, events: events.map(({ id, at, kind, message, data }) => ({ id, at, kind, message, data })) } });
      }
      const points = this.core.services.metrics(name, this.lastPointT.get(name) ?? 0);
      if (points.length > 0) {
        this.lastPointT.set(name, points.at(-1)!.t);
        this.broadcast({ event: 'scale-points', data: { name, points } });
      }
    }
  }

  private async tickUsage(): Promise<void> {
    const now = Date.now();
    const usage: Record<string, { cpuPct: number; rssMiB: number }> = {};
    const seen = new Set<string>();
    await Promise.all(
      this.core.records.list().map(async (vm) => {
        if (vm.pid === null) return;
        const sample = await sampleProcess(vm.pid);
        if (!sample) return;
        seen.add(vm.id);
        const before = this.usage.get(vm.id);
        this.usage.set(vm.id, { sample, at: now });
        usage[vm.id] = {
          cpuPct: before ? Math.round(cpuPercent(before.sample, sample, now - before.at) * 10) / 10 : 0,
          rssMiB: Math.round(sample.rssBytes / 1024 / 1024),
        };
      }),
    );
    for (const id of this.usage.keys()) if (!seen.has(id)) this.usage.delete(id);
    this.broadcast({ event: 'vm-usage', data: { at: new Date(now).toISOString(), usage } });
    this.sendIfChanged('inventory', 'inventory', await this.inventory());
    const [pipeline, plant] = await Promise.all([probePipeline(this.core.records), probePlant(this.core.records)]);
    if (pipeline) this.broadcast({ event: 'pipeline', data: { at: new Date().toISOString(), ...pipeline } });
    if (plant) this.broadcast({ event: 'plant', data: { at: new Date().toISOString(), ...plant } });
  }

  private async inventory(): Promise<unknown> {
    const snaps = this.core.snapshots;
    return {
      images: (await this.images.list()).map(imageView),
      snapshots: snaps.list('snapshot').map((s) => snapshotView(s, snaps.dependents(s.name))),
      templates: snaps.list('template').map((s) => snapshotView(s, snaps.dependents(s.name))),
      volumes: this.volumes.list().map((v) => ({ name: v.name, sizeMiB: v.sizeMiB, createdAt: v.createdAt, attachedTo: v.attachedTo, usedBy: v.usedBy })),
    };
  }
}
