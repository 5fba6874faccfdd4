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
 * leaves the ready set has its pool destroyed: the service layer takes a replica out when
 * its VM died or is being removed (forced off), and a request to a VM that vanished gets
 * no reset, only silence; failing it at once lets a replayable one go to another replica.
 */
export class ReplicaDispatchers {
  private readonly pools = new Map<string, Pool>();
  /** Pools closing gracefully, destroyed if still busy when the entry point closes. */
  private readonly closing = new Set<Pool>();

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

  /** Closes the pools of replicas no longer in `ready`. */
  retain(ready: readonly Replica[]): void {
    const keep = new Set(ready.map((r) => `${r.vmId}@${originOf(r)}`));
    for (const [key, pool] of this.pools) {
      if (keep.has(key)) continue;
      this.pools.delete(key);
      this.closing.add(pool);
      pool.destroy().then(
        () => this.closing.delete(pool),
        () => this.closing.delete(pool),
      );
    }
  }

  /** Ends every connection now; requests still under way fail. */
  async destroyAll(): Promise<void> {
    const all = [...this.pools.values(), ...this.closing];
    this.pools.clear();
    this.closing.clear();
    await Promise.all(all.map((p) => p.destroy().catch(() => undefined)));
  }
}
