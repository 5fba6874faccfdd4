import type { Replica } from './gateway-types.js';

/**
 * Picks the replica with the fewest requests in flight (ties in turn, round robin), so a
 * slow replica gets fewer requests than a fast one. A replica that just failed at the
 * connection level is set aside for `ejectMs` while others remain: the service layer may
 * take a while to notice a dead VM, and every request sent to it meanwhile would cost a retry.
 */
export class ReplicaBalancer {
  private readonly inflight = new Map<string, number>();
  private readonly ejectedUntil = new Map<string, number>();
  private cursor = 0;

  constructor(
    private readonly ejectMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The replica to try next, not one of `tried`; undefined when none is left. */
  pick(replicas: readonly Replica[], tried: ReadonlySet<string>): Replica | undefined {
    const now = this.now();
    const healthy = this.best(replicas, (r) => !tried.has(r.vmId) && !this.isEjected(r.vmId, now));
    return healthy ?? this.best(replicas, (r) => !tried.has(r.vmId));
  }

  /** A request to `vmId` starts; pair with release(). */
  acquire(vmId: string): void {
    this.inflight.set(vmId, (this.inflight.get(vmId) ?? 0) + 1);
  }

  release(vmId: string): void {
    const n = (this.inflight.get(vmId) ?? 1) - 1;
    if (n > 0) this.inflight.set(vmId, n);
    else this.inflight.delete(vmId);
  }

  /** Requests to `vmId` acquired and not yet released. */
  inflightTo(vmId: string): number {
    return this.inflight.get(vmId) ?? 0;
  }

  /** `vmId` failed to connect or answer: prefer the others for a while. */
  eject(vmId: string): void {
    this.ejectedUntil.set(vmId, this.now() + this.ejectMs);
  }

  /** Forgets what it knows of replicas that are gone (their in-flight counts stay until released). */
  retain(vmIds: ReadonlySet<string>): void {
    for (const id of this.ejectedUntil.keys()) if (!vmIds.has(id)) this.ejectedUntil.delete(id);
  }

  private isEjected(vmId: string, now: number): boolean {
    const until = this.ejectedUntil.get(vmId);
    if (until === undefined) return false;
    if (until > now) return true;
    this.ejectedUntil.delete(vmId);
    return false;
  }

  private best(replicas: readonly Replica[], eligible: (r: Replica) => boolean): Replica | undefined {
    const n = replicas.length;
    let chosen = -1;
    let least = Infinity;
    for (let i = 0; i < n; i++) {
      const at = (this.cursor + i) % n;
      const r = replicas[at]!;
      if (!eligible(r)) continue;
      const load = this.inflight.get(r.vmId) ?? 0;
      if (load < least) {
        least = load;
        chosen = at;
      }
    }
    if (chosen < 0) return undefined;
    this.cursor = (chosen + 1) % n;
    return replicas[chosen];
  }
}
