import { Pool } from 'undici';
import type { Replica } from './gateway-types.js';

export interface DispatcherSettings {
  /** Connections kept at most to one replica; more requests wait in its pool. */
  connections: number;
  connectTimeoutMs: number;
}

function originOf(r: Replica): string {
  return `http://${r.ip.includes(':') ? `[${r.ip}]` : r.ip}:${r.port}`;
}

/**
 * One undici Pool (keep-alive connections) per replica, made on first use. A replica that
 * leaves the ready set to drain (a scale-down stops it gracefully) has its pool closed:
 * the requests under way finish, then its connections end. One that leaves otherwise
 * (its VM died, or is being forced off), or whose drain ended, has its pool destroyed: a
 * request to a VM that vanished gets no reset, only silence; failing it at once lets a
 * replayable one go to another replica.
 */
export class ReplicaDispatchers {
  private readonly pools = new Map<string, Pool>();
  /** Pools of draining replicas, by key: destroyed if still busy when the drain ends. */
  private readonly closing = new Map<string, Pool>();

  constructor(private readonly settings: DispatcherSettings) {}

  get(r: Replica): Pool {
    // The VM id and the address: a VM restarted on another address is another origin.
    const key = `${r.vmId}@${originOf(r)}`;
    let pool = this.pools.get(key);
    if (pool === undefined) {
      pool = new Pool(originOf(r), { connections: this.settings.connections, connect: { timeout: this.settings.connectTimeoutMs } });
      this.pools.set(key, pool);
    }
    return pool;
  }

  /** Lets go of the pools of replicas no longer in `ready`: gracefully for those `draining`. */
  retain(ready: readonly Replica[], draining: readonly Replica[] = []): void {
    const keep = new Set(ready.map((r) => `${r.vmId}@${originOf(r)}`));
    const drain = new Set(draining.map((r) => `${r.vmId}@${originOf(r)}`));
    for (const [key, pool] of this.pools) {
      if (keep.has(key)) continue;
      this.pools.delete(key);
      if (!drain.has(key)) {
        void pool.destroy().catch(() => undefined);
        continue;
      }
      this.closing.set(key, pool);
      pool.close().then(
        () => this.forget(key, pool),
        () => this.forget(key, pool),
      );
    }
    for (const [key, pool] of this.closing) {
      if (drain.has(key)) continue;
      this.closing.delete(key);
      void pool.destroy().catch(() => undefined);
    }
  }

  private forget(key: string, pool: Pool): void {
    if (this.closing.get(key) === pool) this.closing.delete(key);
  }

  /** Ends every connection now; requests still under way fail. */
  async destroyAll(): Promise<void> {
    const all = [...this.pools.values(), ...this.closing.values()];
    this.pools.clear();
    this.closing.clear();
    await Promise.all(all.map((p) => p.destroy().catch(() => undefined)));
  }
}
