import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CounterRate, MetricWindow } from '../autoscale/metric-window.js';
import { decide, initialAutoscaleState, type AutoscaleState } from '../autoscale/decide.js';
import { ScaleSeries, scalePoint } from '../autoscale/scale-series.js';
import type { VmCommands } from '../commands/vm-commands.js';
import { messageOf } from '../errors.js';
import type { ServiceEvent, ServiceRecord, VmRecord } from '../models.js';
import type { Replica, ServiceGateway } from '../ports.js';
import type { Fleet } from '../supervision/fleet.js';
import { isActive } from '../vm-state.js';
import { fetchNumber, probe } from './probe.js';
import { codeCacheOf } from '../vm-request.js';

export const TICK_MS = 500;
/** A replica ready this long resets the crash back-off. */
const STABLE_MS = 30_000;
const MAX_BACKOFF_MS = 60_000;

interface Health {
  ready: boolean;
  readyFailures: number;
  liveFailures: number;
  lastReadiness: number;
  lastLiveness: number;
  readySince: number | null;
  probing: boolean;
}

/**
 * Keeps one service's replicas: starts the missing ones (a pool's spare first, through
 * create), removes extras, checks readiness and liveness from the host, replaces replicas
 * whose liveness fails, restarts crashed ones per the restart policy with exponential
 * back-off, lets the autoscaler set the count, and publishes the ready replicas (DNS, the
 * gateway). Every decision is an event.
 *
 * With `scaleDown: 'pause'`, a scale-down pauses a running replica instead of removing it
 * (once the gateway's requests to it have finished; for a service scaled on an http-json
 * metric, only a scale to zero), and a scale-up resumes paused ones
 * before it starts any: a resumed replica keeps its name, address, memory and, under TCG,
 * its translated code, so it is as warm as when it was paused. A paused replica burns no
 * CPU but keeps its memory (the daemon's limits count it); running and paused together stay
 * within `replicas.max`.
 */
export class ServiceController {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private readonly health = new Map<string, Health>();
  private readonly removing = new Set<string>();
  /** Replicas a scale-down is pausing: out of rotation while their requests finish. */
  private readonly pausing = new Set<string>();
  /** Paused replicas a scale-up is resuming: they count as wanted replicas already. */
  private readonly resuming = new Set<string>();
  private readonly restarting = new Set<string>();
  /** Names of the replicas being created: each counts once, whether its record exists yet or not. */
  private readonly pendingStarts = new Set<string>();
  private crashes = 0;
  private gateUntil = 0;
  private published = '';
  private scaler: { window: MetricWindow; state: AutoscaleState; rate: CounterRate; lastDemandAt: number | null } | null = null;
  readonly series = new ScaleSeries();

  constructor(
    readonly name: string,
    private readonly fleet: Fleet,
    private readonly vms: VmCommands,
    private readonly gateway: ServiceGateway | null,
    private readonly event: (kind: string, message: string, data?: Record<string, unknown>) => ServiceEvent,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.poke(), TICK_MS);
    this.timer.unref();
    this.poke();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** Runs a tick now (or right after the one running). */
  poke(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.tick()
      .catch((e: unknown) => this.fleet.o.log(`service ${this.name}: ${messageOf(e)}`))
      .finally(() => {
        this.running = null;
        if (this.again && this.timer) {
          this.again = false;
          this.poke();
        }
      });
  }

  replicas(): VmRecord[] {
    return this.fleet.records.list().filter((v) => v.service === this.name);
  }

  /** The ready replicas as last published: the gateway asks on every request, so no store reads here. */
  ready(): Replica[] {
    return this.readyNow;
  }

  /** Replicas a scale-down is stopping gracefully: the gateway lets their requests finish. */
  draining(): Replica[] {
    const port = this.fleet.o.store.getService(this.name)?.spec.port ?? null;
    if (port === null) return [];
    return [...this.drainingIds].flatMap((id) => {
      const v = this.fleet.records.find(id);
      return v?.ip ? [{ vmId: v.id, ip: v.ip, port }] : [];
    });
  }

  private readonly drainingIds = new Set<string>();

  private readyNow: Replica[] = [];

  private computeReady(): Replica[] {
    const rec = this.fleet.o.store.getService(this.name);
    if (!rec || rec.spec.port === null) return [];
    const port = rec.spec.port;
    return this.replicas()
      .filter((v) => v.state === 'running' && v.ip && this.health.get(v.id)?.ready && !this.removing.has(v.id) && !this.pausing.has(v.id))
      .map((v) => ({ vmId: v.id, ip: v.ip!, port }));
  }

  counts(): { ready: number; running: number; paused: number } {
    const all = this.replicas().filter((v) => !this.removing.has(v.id));
    return { ready: this.computeReady().length, running: all.filter((v) => v.state === 'running').length, paused: all.filter((v) => v.state === 'paused').length };
  }

  /**
   * Replicas a scale-down paused (scaleDown 'pause'), there for the next scale-up: the most
   * recently paused first. None for a service that removes on scale-down, whose paused
   * replicas (paused by hand) count as wanted ones.
   */
  private standby(rec: ServiceRecord): VmRecord[] {
    if (rec.spec.scaleDown !== 'pause') return [];
    return this.replicas()
      // Not one still in pauseReplica (its record says paused a moment before that ends): it
      // is counted among the pausing ones.
      .filter((v) => v.state === 'paused' && !this.removing.has(v.id) && !this.resuming.has(v.id) && !this.pausing.has(v.id))
      .sort((a, b) => b.stateChangedAt.localeCompare(a.stateChangedAt));
  }

  /** A request waits at the gateway with no replica ready: at least one is wanted now. */
  wake(): void {
    const rec = this.fleet.o.store.getService(this.name);
    if (!rec) throw new Error(`no service named '${this.name}'`);
    if (this.scaler) this.scaler.lastDemandAt = this.now();
    if (rec.desired < 1) {
      const to = Math.max(1, rec.spec.replicas.min);
      const reason = 'woken by a request at the gateway';
      this.setDesired(rec, to, reason);
      this.event('woke', 'a request arrived with no replica ready: starting one', {});
      // A scale decision as much as the autoscaler's: it goes into the series its chart draws.
      this.series.add(scalePoint(this.now(), this.series.latest()?.metric ?? null, this.counts(), { from: rec.desired, desired: to, reason }));
    }
    this.poke();
  }

  private now(): number {
    return this.fleet.o.clock.now().getTime();
  }

  private setDesired(rec: ServiceRecord, desired: number, reason: string): void {
    if (rec.desired === desired) return;
    const from = rec.desired;
    this.fleet.o.store.updateService({ ...rec, desired, updatedAt: this.fleet.o.clock.now().toISOString() });
    this.event('scaled', `${from} -> ${desired}: ${reason}`, { from, to: desired, reason });
  }

  private async tick(): Promise<void> {
    let rec = this.fleet.o.store.getService(this.name);
    if (!rec) return;
    const now = this.now();
    const spec = rec.spec;
    const replicas = this.replicas().filter((v) => !this.removing.has(v.id));
    // Health is per run of a replica: one that stopped or failed starts over when it runs again.
    for (const id of [...this.health.keys()]) if (!replicas.some((v) => v.id === id && v.state === 'running')) this.health.delete(id);

    await this.checkHealth(rec, replicas, now);

    // Crashed replicas: restart per policy, with back-off shared by every start of the service.
    for (const r of replicas.filter((v) => v.state === 'failed' || v.state === 'stopped')) {
      const keep = spec.restart === 'never' || (spec.restart === 'on-failure' && r.state === 'stopped');
      if (keep || this.restarting.has(r.id) || now < this.gateUntil) continue;
      const delay = this.backoff();
      this.event('restart', `replica ${r.name} ${r.state === 'failed' ? `failed (${r.error ?? 'no reason'})` : 'stopped'}; restarting it, next restart no sooner than ${delay} ms`, { vm: r.name, delayMs: delay, attempt: this.crashes });
      this.restarting.add(r.id);
      void this.vms
        .start(r.id, 'ready')
        .then(() => this.event('replica-ready', `replica ${r.name} restarted`, { vm: r.name }))
        .catch((e: unknown) => this.event('restart-failed', `replica ${r.name} did not restart: ${messageOf(e)}`, { vm: r.name }))
        .finally(() => {
          this.restarting.delete(r.id);
          this.poke();
        });
    }

    rec = this.autoscale(rec, now);

    // The count: start what is missing (pool first), remove extras. Read again now: a start
    // may have finished while the probes above were awaited, and a count from before them
    // would start one replica too many.
    const standby = this.standby(rec);
    const standbyIds = new Set(standby.map((v) => v.id));
    const slots = this.replicas()
      .filter((v) => !this.removing.has(v.id) && !this.pausing.has(v.id) && !standbyIds.has(v.id))
      .filter((v) => isActive(v.state) || v.state === 'creating' || v.state === 'failed' || v.state === 'stopped' || v.state === 'suspended');
    const desired = Math.min(Math.max(rec.desired, spec.replicas.min), spec.replicas.max);
    const missing = desired - slots.length - [...this.pendingStarts].filter((n) => !slots.some((v) => v.name === n)).length;
    // Paused replicas first: a resume is not a start, so the crash back-off does not hold it.
    const resumed = Math.min(standby.length, Math.max(0, missing));
    for (const v of standby.slice(0, resumed)) this.resumeReplica(v);
    if (missing - resumed > 0 && now >= this.gateUntil) for (let i = 0; i < missing - resumed; i++) this.startReplica(rec);
    if (slots.length > desired) {
      const rank = (v: VmRecord): number => (v.state === 'failed' || v.state === 'stopped' ? 0 : this.health.get(v.id)?.ready ? 2 : 1);
      const extras = [...slots].sort((a, b) => rank(a) - rank(b) || b.createdAt.localeCompare(a.createdAt)).slice(0, slots.length - desired);
      // A pause waits only for the requests through the gateway. A service scaled on an
      // outside metric (http-json: a queue's backlog) has replicas that pull their work,
      // which the daemon cannot see: one paused in the middle of a task would hold it until
      // its lease ran out. So it pauses only when it goes to zero (nothing was pending for
      // scaleToZeroAfterMs), and a scale-down above zero drains and removes as before.
      const pauses = spec.scaleDown === 'pause' && (desired === 0 || spec.autoscale?.metric !== 'http-json');
      for (const v of extras) {
        if (pauses && v.state === 'running') this.pauseReplica(v, `scaled to ${desired}`);
        else this.removeReplica(v, `scaled to ${desired}`, true);
      }
    }
    // Running and paused replicas together stay within max (a PATCH may lower it): the
    // paused ones unused the longest go first.
    const room = Math.max(0, spec.replicas.max - Math.max(slots.length + resumed, desired) - this.pausing.size);
    for (const v of standby.slice(resumed).slice(room)) this.removeReplica(v, `paused, and replicas.max (${spec.replicas.max}) is reached without it`);
    // Back-off ends once a replica that became ready after the last failure has stayed so.
    if (replicas.some((v) => { const since = this.health.get(v.id)?.readySince ?? null; return v.state === 'running' && since !== null && since > this.lastCrashAt && since <= now - STABLE_MS; })) this.crashes = 0;

    this.publish();
    const { ready, running } = this.counts();
    if (!rec.spec.autoscale) this.series.add({ t: now, metric: null, desired, ready, running });
  }

  private lastCrashAt = 0;

  private backoff(): number {
    this.crashes++;
    this.lastCrashAt = this.now();
    const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (this.crashes - 1));
    this.gateUntil = this.now() + delay;
    return delay;
  }

  private startReplica(rec: ServiceRecord): void {
    const s = rec.spec.vm;
    const name = `${rec.spec.name.slice(0, 56)}-${randomBytes(3).toString('hex')}`;
    this.pendingStarts.add(name);
    const t0 = performance.now();
    void this.vms
      .create({ image: s.image, vcpus: s.vcpus, memMiB: s.memMiB, env: s.env, args: s.args, driver: s.driver, name, stopTimeoutMs: s.stopTimeoutMs, ...codeCacheOf(s) }, 'ready', {}, { service: rec.spec.name })
      .then((vm) => this.event('replica-started', `replica ${vm.name} ready (${vm.origin}, ${Math.round(performance.now() - t0)} ms)`, { vm: vm.name, origin: vm.origin, ms: Math.round(performance.now() - t0) }))
      .catch((e: unknown) => {
        const delay = this.backoff();
        this.event('start-failed', `replica ${name} did not start: ${messageOf(e)}; next start no sooner than ${delay} ms`, { vm: name, delayMs: delay, attempt: this.crashes });
      })
      .finally(() => {
        this.pendingStarts.delete(name);
        this.poke();
      });
  }

  /**
   * Takes a replica out of rotation and removes it. A scale-down stops it gracefully (its
   * app gets SIGTERM and the VM's stopTimeoutMs to finish, as Kubernetes and Knative drain
   * a pod): killing a worker in the middle of a task left the task held until its lease
   * expired. A replica that failed its liveness check is killed at once.
   */
  private removeReplica(v: VmRecord, why: string, graceful = false): void {
    if (this.removing.has(v.id)) return;
    this.removing.add(v.id);
    // Only a running replica has requests to finish.
    const drains = graceful && v.state === 'running';
    if (drains) this.drainingIds.add(v.id);
    this.publish();
    this.event('replica-removed', `replica ${v.name} removed: ${why}${drains ? ` (stopped gracefully, up to ${v.spec.stopTimeoutMs} ms)` : ''}`, { vm: v.name, graceful });
    void this.vms
      .remove(v.id, { force: !graceful })
      .then((gone) => {
        if (v.state !== 'running') return;
        const how = gone.error ?? (gone.exitCode === null ? 'ended without an exit code from its app (killed)' : `its app exited with ${gone.exitCode}`);
        this.event('replica-stopped', `replica ${v.name} stopped: ${how}`, { vm: v.name, exitCode: gone.exitCode, error: gone.error });
      })
      .catch((e: unknown) => this.fleet.o.log(`service ${this.name}: removing ${v.name}: ${messageOf(e)}`))
      .finally(() => {
        this.removing.delete(v.id);
        // Gone now: the gateway drops what it kept open to it.
        if (this.drainingIds.delete(v.id)) this.gateway?.replicasChanged(this.name);
        this.poke();
      });
  }

  /**
   * Takes a running replica out of rotation, lets the gateway's requests to it finish (up to
   * its stopTimeoutMs), and pauses it. A replica that cannot be paused is removed.
   */
  private pauseReplica(v: VmRecord, why: string): void {
    if (this.pausing.has(v.id) || this.removing.has(v.id)) return;
    this.pausing.add(v.id);
    this.drainingIds.add(v.id);
    this.publish();
    const t0 = performance.now();
    void (async () => {
      const deadline = t0 + v.spec.stopTimeoutMs;
      while ((this.gateway?.inflightTo(this.name, v.id) ?? 0) > 0 && performance.now() < deadline) await sleep(20);
      const left = this.gateway?.inflightTo(this.name, v.id) ?? 0;
      await this.vms.pause(v.id);
      const ms = Math.round(performance.now() - t0);
      this.event('replica-paused', `replica ${v.name} paused: ${why}${left > 0 ? ` (${left} request(s) still in flight after ${v.spec.stopTimeoutMs} ms)` : ''} (${ms} ms)`, { vm: v.name, ms, inflight: left });
    })()
      .catch((e: unknown) => {
        this.event('pause-failed', `replica ${v.name} could not be paused: ${messageOf(e)}; removing it`, { vm: v.name });
        this.removeReplica(v, 'pause failed');
      })
      .finally(() => {
        this.pausing.delete(v.id);
        // Paused or gone: the gateway drops what it kept open to it.
        if (this.drainingIds.delete(v.id)) this.gateway?.replicasChanged(this.name);
        this.poke();
      });
  }

  /** Resumes a paused replica; it joins the rotation once its readiness check passes. */
  private resumeReplica(v: VmRecord): void {
    if (this.resuming.has(v.id)) return;
    this.resuming.add(v.id);
    const t0 = performance.now();
    void this.vms
      .resume(v.id)
      .then(() => {
        const ms = Math.round(performance.now() - t0);
        this.event('replica-resumed', `replica ${v.name} resumed (${ms} ms)`, { vm: v.name, ms });
      })
      .catch((e: unknown) => {
        this.event('resume-failed', `replica ${v.name} could not be resumed: ${messageOf(e)}; removing it`, { vm: v.name });
        this.removeReplica(v, 'resume failed');
      })
      .finally(() => {
        this.resuming.delete(v.id);
        this.poke();
      });
  }

  private async checkHealth(rec: ServiceRecord, replicas: VmRecord[], now: number): Promise<void> {
    const { readiness, liveness } = rec.spec.health;
    const port = rec.spec.port;
    await Promise.all(
      replicas
        // A VM being saved (a template, a snapshot) is frozen for a moment: not a failure.
        .filter((v) => v.state === 'running' && v.ip && !this.fleet.saving.has(v.id))
        .map(async (v) => {
          let h = this.health.get(v.id);
          if (!h) {
            h = { ready: readiness === null, readyFailures: 0, liveFailures: 0, lastReadiness: 0, lastLiveness: 0, readySince: readiness === null ? now : null, probing: false };
            this.health.set(v.id, h);
          }
          if (h.probing || port === null) return;
          h.probing = true;
          try {
            if (readiness && now - h.lastReadiness >= readiness.intervalMs) {
              h.lastReadiness = now;
              const ok = await probe(v.ip!, port, readiness.kind, readiness.path, readiness.timeoutMs);
              h.readyFailures = ok ? 0 : h.readyFailures + 1;
              if (ok && !h.ready) h.readySince = now;
              if (ok) h.ready = true;
              else if (h.readyFailures >= readiness.failures) {
                h.ready = false;
                h.readySince = null;
              }
            }
            if (liveness && h.ready && now - h.lastLiveness >= liveness.intervalMs) {
              h.lastLiveness = now;
              const ok = await probe(v.ip!, port, liveness.kind, liveness.path, liveness.timeoutMs);
              h.liveFailures = ok ? 0 : h.liveFailures + 1;
              if (h.liveFailures >= liveness.failures) {
                this.event('liveness-failed', `replica ${v.name} failed ${h.liveFailures} liveness checks in a row: replacing it`, { vm: v.name });
                this.removeReplica(v, 'liveness failed');
              }
            }
          } finally {
            h.probing = false;
          }
        }),
    );
  }

  /** Samples the metric, lets the autoscaler decide, keeps the series. */
  private autoscale(rec: ServiceRecord, now: number): ServiceRecord {
    const s = rec.spec.autoscale;
    if (!s) return rec;
    const counts = this.counts();
    this.scaler ??= { window: MetricWindow.forSettings(s), state: initialAutoscaleState(now, rec.desired), rate: new CounterRate(), lastDemandAt: null };
    const sc = this.scaler;
    let value: number | undefined;
    if (s.metric === 'inflight') value = this.gateway?.stats(this.name)?.inflight ?? 0;
    else if (s.metric === 'rps') {
      const total = this.gateway?.stats(this.name)?.requests;
      value = total === undefined ? undefined : sc.rate.observe(now, total);
    } else {
      // Fetched in the background: a slow metric source never holds the tick.
      value = this.lastFetched;
      if (!this.fetching) {
        this.fetching = true;
        void fetchNumber(s.url!, s.field, 2000)
          .then((n) => {
            const before = this.lastFetched;
            this.lastFetched = Math.max(0, n);
            // A new value is decided on now, not a tick later: a backlog appearing wakes the service sooner.
            if (before !== this.lastFetched) this.poke();
          })
          .catch((e: unknown) => {
            this.lastFetched = undefined;
            this.fleet.o.log(`service ${this.name}: autoscale metric: ${messageOf(e)}`);
          })
          .finally(() => (this.fetching = false));
      }
    }
    if (value === undefined) return rec;
    sc.window.record(now, value);
    const stable = sc.window.average(now, s.stableWindowMs);
    const panic = sc.window.average(now, s.panicWindowMs);
    if (stable === undefined || panic === undefined) return rec;
    const lastDemandAt = Math.max(sc.window.lastNonZeroAt ?? -Infinity, sc.lastDemandAt ?? -Infinity);
    const d = decide(sc.state, { now, stable, panic, latest: value, lastDemandAt: Number.isFinite(lastDemandAt) ? lastDemandAt : null, ready: counts.ready }, s, rec.spec.replicas);
    sc.state = d.state;
    this.series.add(scalePoint(now, value, counts, { from: rec.desired, desired: d.desired, reason: d.reason }));
    if (d.desired !== rec.desired) {
      this.setDesired(rec, d.desired, d.reason);
      return this.fleet.o.store.getService(this.name) ?? rec;
    }
    return rec;
  }

  private lastFetched: number | undefined;
  private fetching = false;

  /** The service's name resolves to its ready replicas; the gateway hears of changes. */
  private publish(): void {
    const ready = this.computeReady();
    this.readyNow = ready;
    const key = ready.map((r) => r.ip).sort().join(',');
    if (key === this.published) return;
    this.published = key;
    this.fleet.o.network.setServiceAddresses(this.name, ready.map((r) => r.ip));
    this.gateway?.replicasChanged(this.name);
  }

  /** Forgets what it published (the service is removed). */
  unpublish(): void {
    this.fleet.o.network.setServiceAddresses(this.name, []);
    this.published = '';
    this.readyNow = [];
  }
}
