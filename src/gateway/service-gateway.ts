import type { GatewayOpenOptions, GatewayStats, ReplicaSource, ServiceGateway } from './gateway-types.js';
import { ServiceEntry, type EntrySettings } from './service-entry.js';

export interface GatewayOptions {
  /** Attempts after the first for a replayable request whose replica failed to connect (default 2). */
  maxRetries?: number;
  /** How long a replica that failed to connect is passed over while others are ready (default 2000 ms). */
  ejectMs?: number;
  /** Connections kept at most to one replica (default 64). */
  connectionsPerReplica?: number;
  /** A replica that does not accept a connection within this is a failed attempt (default 3000 ms). */
  connectTimeoutMs?: number;
  /** How long close() lets proxied requests finish before it cuts them (default 5000 ms). */
  closeGraceMs?: number;
  now?: () => number;
}

/**
 * The HTTP entry points of services: one listener per service, proxying to its ready
 * replicas through undici (service-entry.ts). Opening and closing one service are
 * serialized; different services do not wait for each other.
 */
export class HttpServiceGateway implements ServiceGateway {
  private readonly entries = new Map<string, ServiceEntry>();
  /** The last open/close of each service, so the next one starts after it. */
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly settings: EntrySettings;

  constructor(
    private readonly source: ReplicaSource,
    options: GatewayOptions = {},
  ) {
    this.settings = {
      maxRetries: options.maxRetries ?? 2,
      ejectMs: options.ejectMs ?? 2000,
      connectionsPerReplica: options.connectionsPerReplica ?? 64,
      connectTimeoutMs: options.connectTimeoutMs ?? 3000,
      closeGraceMs: options.closeGraceMs ?? 5000,
      now: options.now ?? Date.now,
    };
  }

  open(service: string, settings: GatewayOpenOptions): Promise<{ url: string; hostPort: number }> {
    return this.serialized(service, async () => {
      const existing = this.entries.get(service);
      if (existing !== undefined) return existing.listen(settings);
      const entry = new ServiceEntry(service, this.source, this.settings);
      const endpoint = await entry.listen(settings);
      this.entries.set(service, entry);
      return endpoint;
    });
  }

  close(service: string): Promise<void> {
    return this.serialized(service, async () => {
      const entry = this.entries.get(service);
      if (entry === undefined) return;
      this.entries.delete(service);
      await entry.close();
    });
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.entries.keys()].map((service) => this.close(service)));
  }

  stats(service: string): GatewayStats | null {
    return this.entries.get(service)?.stats() ?? null;
  }

  inflightTo(service: string, vmId: string): number {
    return this.entries.get(service)?.inflightTo(vmId) ?? 0;
  }

  replicasChanged(service: string): void {
    this.entries.get(service)?.replicasChanged();
  }

  private serialized<T>(service: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.queues.get(service) ?? Promise.resolve()).then(fn);
    const tail = run.catch(() => undefined);
    this.queues.set(service, tail);
    void tail.then(() => {
      if (this.queues.get(service) === tail) this.queues.delete(service);
    });
    return run;
  }
}
