import { Periodic } from '../../util/periodic.js';
import { cpuPercent, processPssBytes, sampleProcess } from '../../util/process-usage.js';
import type { VmRecord } from '../models.js';
import type { VmRecords } from './vm-records.js';

/** What a VM's VMM process really holds and burns, as last measured. */
export interface VmUsage {
  /** Proportional set size of the VMM, MiB: its share of every page it maps. */
  pssMiB: number;
  /** Percent of one core the VMM used between its last two samples; null after the first. */
  cpuPct: number | null;
  /** What the VMM may still add by itself, MiB (TCG's translation cache up to its bound). */
  growthMiB: number;
  /** When it was measured (ms since the epoch). */
  at: number;
}

/**
 * Reads one process, or null when it is gone: `sample` its CPU time in ticks (USER_HZ) and
 * its RSS (/proc stat and statm: a few microseconds), `pss` its proportional set size
 * (smaps_rollup: a walk of every mapping, about 1.4 ms for a QEMU here).
 */
export interface ProcessSampler {
  sample(pid: number): Promise<{ cpuTicks: number; rssBytes: number } | null>;
  pss(pid: number): Promise<number | null>;
}

/** What a VM's VMM may still add by itself, bytes (its driver knows); null when it is gone. */
export type GrowthReader = (vm: VmRecord) => Promise<number | null>;

export const procSampler: ProcessSampler = { sample: sampleProcess, pss: processPssBytes };

interface Entry extends VmUsage {
  pid: number;
  /** The CPU time at cpuAt: the start of the next CPU window. */
  cpuTicks: number;
  cpuAt: number;
  /** The RSS when pssMiB and growthMiB were read, and when. */
  pssRss: number;
  pssAt: number;
  growthRss: number;
  growthAt: number;
}

/** The shortest window a CPU figure is taken over: /proc counts CPU time in 10 ms ticks. */
const MIN_CPU_WINDOW_MS = 400;

/**
 * PSS and room to grow are read again only once the VMM's RSS has moved this much since
 * they were read: they cannot grow otherwise (a page a VMM newly touches is resident; its
 * code cache grows by the pages it fills). An idle VM's RSS stands still, so an idle fleet
 * is measured from /proc stat and statm alone: with 150 idle clones the daemon read 10
 * smaps_rollup (1.4 ms each) and 2.5 full smaps (3.5 ms, 260 KB of text) a second before.
 */
const RSS_MOVED_BYTES = 1024 * 1024;

/**
 * How long a PSS is kept at most: it also changes when the VMs sharing a page come and go
 * (a clone's share of its template's pages), which RSS does not show. A share grows only
 * when a sharer goes, and that frees at least as much.
 */
const PSS_MAX_AGE_MS = 5 * 60_000;

/**
 * How long a VMM's room to grow is kept before it is read again even though its RSS moved.
 * It changes slowly (a clone's code cache took 31 min to grow from 14 to 24 MiB), and reading
 * it walks the full smaps, about 3.5 ms for a QEMU here against 1.4 for smaps_rollup.
 */
const GROWTH_REFRESH_MS = 60_000;

/**
 * Measures the VMs that are up, so that limits count what they use rather than what they
 * were given: an idle VM of 128 MiB holds a fraction of it, and burns a fraction of a
 * percent of a core. Each VM is measured as soon as it is ready (the create that booted it
 * awaits that), once more a tick later (a CPU figure takes two samples), then about every
 * `refreshMs`: a bounded slice of the fleet per tick, so that a host of hundreds of VMMs is
 * read evenly rather than all at once.
 */
export class UsageMeter {
  private readonly entries = new Map<string, Entry>();
  private readonly ticker: Periodic;
  private readonly tickMs: number;
  private readonly refreshMs: number;
  private readonly maxPerTick: number;

  constructor(
    private readonly records: VmRecords,
    private readonly sampler: ProcessSampler = procSampler,
    private readonly growth: GrowthReader = async () => 0,
    opts: { tickMs?: number; refreshMs?: number; maxPerTick?: number } = {},
  ) {
    this.tickMs = opts.tickMs ?? 500;
    this.refreshMs = opts.refreshMs ?? 10_000;
    this.maxPerTick = opts.maxPerTick ?? 5;
    this.ticker = new Periodic(this.tickMs, () => this.tick());
    records.on('removed', (vm) => this.entries.delete(vm.id));
  }

  /** The VM's last measurement, if it was taken of the VMM it runs now. */
  get(vm: VmRecord): VmUsage | null {
    const e = this.entries.get(vm.id);
    if (!e || vm.pid === null || e.pid !== vm.pid) return null;
    return { pssMiB: e.pssMiB, cpuPct: e.cpuPct, growthMiB: e.growthMiB, at: e.at };
  }

  /** Measures one VM now (a no-op for one without a VMM). */
  async measure(vm: VmRecord): Promise<void> {
    const pid = vm.pid;
    if (pid === null) return;
    const s = await this.sampler.sample(pid);
    if (!s) return;
    const now = Date.now();
    const had = this.entries.get(vm.id);
    const prev = had && had.pid === pid ? had : null;
    const pssDue = !prev || Math.abs(s.rssBytes - prev.pssRss) >= RSS_MOVED_BYTES || now - prev.pssAt >= PSS_MAX_AGE_MS;
    const growthDue = !prev || (s.rssBytes - prev.growthRss >= RSS_MOVED_BYTES && now - prev.growthAt >= GROWTH_REFRESH_MS);
    const [pssBytes, growthBytes] = await Promise.all([pssDue ? this.sampler.pss(pid) : null, growthDue ? this.growth(vm) : null]);
    if ((pssDue && pssBytes === null) || (growthDue && growthBytes === null)) return;
    const mem = {
      pssMiB: pssDue ? pssBytes! / 1024 / 1024 : prev!.pssMiB,
      pssRss: pssDue ? s.rssBytes : prev!.pssRss,
      pssAt: pssDue ? now : prev!.pssAt,
      growthMiB: growthDue ? growthBytes! / 1024 / 1024 : prev!.growthMiB,
      growthRss: growthDue ? s.rssBytes : prev!.growthRss,
      growthAt: growthDue ? now : prev!.growthAt,
    };
    if (prev && now - prev.cpuAt < MIN_CPU_WINDOW_MS) {
      // Too soon after the last sample for a CPU figure: a few ms hold no tick at all.
      this.entries.set(vm.id, { ...prev, ...mem, at: now });
      return;
    }
    const cpuPct = prev ? cpuPercent(prev, s, now - prev.cpuAt) : null;
    this.entries.set(vm.id, { pid, cpuTicks: s.cpuTicks, cpuAt: now, cpuPct, ...mem, at: now });
  }

  start(): void {
    this.ticker.start();
  }

  async stop(): Promise<void> {
    await this.ticker.stop();
  }

  /** Measures the VMs never measured in their current boot, then the stalest slice of the rest. */
  private async tick(): Promise<void> {
    const up = this.records.list().filter((v) => (v.state === 'running' || v.state === 'paused') && v.pid !== null);
    // A VM measured once has no CPU figure yet (that takes two samples): it is measured again
    // on the next tick, so it stops counting its full vCPUs within a tick of being ready.
    const fresh = up.filter((v) => this.get(v)?.cpuPct == null);
    const known = up.filter((v) => this.get(v)?.cpuPct != null).sort((a, b) => this.entries.get(a.id)!.at - this.entries.get(b.id)!.at);
    // A VM whose RSS moved costs a smaps_rollup (1.4 ms per QEMU here) and maybe a full
    // smaps: the slice is bounded, so a busy fleet costs the daemon at most a couple of
    // percent of a core however many VMs run (with 500 VMs each is re-read about every
    // 50 s instead of every 10 s).
    const slice = Math.min(this.maxPerTick, Math.ceil((up.length * this.tickMs) / this.refreshMs));
    const now = Date.now();
    const due = known.filter((v) => now - this.entries.get(v.id)!.at >= this.refreshMs / 2).slice(0, slice);
    for (const vm of [...fresh.slice(0, this.maxPerTick), ...due]) await this.measure(vm);
  }
}
