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

/** The VM id and the address: a VM restarted on another address is another origin. */
function keyOf(r: Replica): string {
  return `${r.vmId}@${originOf(r)}`;
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
  /** Destroys under way, so that `destroyAll` waits for them too. */
  private readonly destroying = new Set<Promise<void>>();

  constructor(private readonly settings: DispatcherSettings) {}

  get(r: Replica): Pool {
    const key = keyOf(r);
    let pool = this.pools.get(key);
    if (pool === undefined) {
      pool = new Pool(originOf(r), { connections: this.settings.connections, connect: { timeout: this.settings.connectTimeoutMs } });
      this.pools.set(key, pool);
    }
    return pool;
  }

  /** Lets go of the pools of replicas no longer in `ready`: gracefully for those `draining`. */
  retain(ready: readonly Replica[], draining: readonly Replica[] = []): void {
    const keep = new Set(ready.map(keyOf));
    const drain = new Set(draining.map(keyOf));
    for (const [key, pool] of this.pools) {
      if (keep.has(key)) continue;
      this.pools.delete(key);
      if (!drain.has(key)) {
        this.destroy(pool);
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
      this.destroy(pool);
    }
  }

  private destroy(pool: Pool): void {
    const done: Promise<void> = pool.destroy().then(
      () => void this.destroying.delete(done),
      () => void this.destroying.delete(done),
    );
    this.destroying.add(done);
  }

  private forget(key: string, pool: Pool): void {
    if (this.closing.get(key) === pool) this.closing.delete(key);
  }

  /** Ends every connection now; requests still under way fail. */
  async destroyAll(): Promise<void> {
    const all = [...this.pools.values(), ...this.closing.values()];
    this.pools.clear();
    this.closing.clear();
    for (const p of all) this.destroy(p);
    await Promise.all([...this.destroying]);
  }
}
