import { Periodic } from '../../util/periodic.js';
import type { VmRecord } from '../models.js';
import type { CodeCacheStats } from '../ports.js';
import type { VmRecords } from './vm-records.js';

/** Flushes between two readings (a minute apart) that make a VM's cache count as thrashing. */
export const THRASH_FLUSHES = 2;
/** Percent of a core a VM must be using (as last measured) to be read: an idle VM cannot thrash. */
export const BUSY_CPU_PCT = 2;
/** How often one VM is warned of at most. */
const WARN_EVERY_MS = 10 * 60_000;

/** Reads a VM's translation cache now; null when it has none (KVM) or no VMM. */
export type CodeCacheReader = (vm: VmRecord) => Promise<CodeCacheStats | null>;

/** Told of a VM whose cache was flushed `flushes` times in the last `overMs`. */
export type ThrashWarning = (vm: VmRecord, flushes: number, overMs: number, boundMiB: number) => void;

/**
 * Warns when a running VM's translation cache keeps filling up. Under TCG a full cache is
 * emptied and everything the guest runs is translated again: a guest that works in more
 * code than its `codeCacheMiB` holds burns several times the CPU and misses its deadlines
 * (the industrial example's six VMs took 127% of a core at 32 MiB, 87% at 64), and nothing
 * else says so. A cold boot flushes once or twice on its way (boot code is never run
 * again), so one flush is no sign: `THRASH_FLUSHES` between two readings is. Once per
 * `everyMs`, each running VM that is busy (`BUSY_CPU_PCT` of a core or more, as the usage
 * meter last saw it) is read, one after another: QEMU's `info jit` walks every translated
 * block, a few ms of the VMM's time, which an idle fleet should not pay every minute. A
 * reading compares only with one taken a period or two before it.
 */
export class CodeCacheWatch {
  private readonly last = new Map<string, { pid: number; flushes: number; at: number; warnedAt: number }>();
  private readonly ticker: Periodic;

  constructor(
    private readonly records: VmRecords,
    private readonly read: CodeCacheReader,
    private readonly busy: (vm: VmRecord) => boolean,
    private readonly warn: ThrashWarning,
    private readonly everyMs = 60_000,
  ) {
    records.on('removed', (vm) => this.last.delete(vm.id));
    this.ticker = new Periodic(everyMs, () => this.check());
  }

  /** Reads every running VM once, warning of those that flushed `THRASH_FLUSHES` times since the last reading. */
  async check(now = Date.now()): Promise<void> {
    for (const vm of this.records.list()) {
      if (vm.state !== 'running' || vm.pid === null || !this.busy(vm)) continue;
      const stats = await this.read(vm).catch(() => null);
      if (!stats) {
        this.last.delete(vm.id);
        continue;
      }
      const prev = this.last.get(vm.id);
      const same = prev !== undefined && prev.pid === vm.pid;
      const recent = same && now - prev.at <= 2 * this.everyMs;
      let warnedAt = same ? prev.warnedAt : Number.NEGATIVE_INFINITY;
      if (recent && stats.flushes - prev.flushes >= THRASH_FLUSHES && now - warnedAt >= WARN_EVERY_MS) {
        this.warn(vm, stats.flushes - prev.flushes, now - prev.at, stats.boundMiB);
        warnedAt = now;
      }
      this.last.set(vm.id, { pid: vm.pid, flushes: stats.flushes, at: now, warnedAt });
    }
  }

  start(): void {
    this.ticker.start();
  }

  async stop(): Promise<void> {
    await this.ticker.stop();
  }
}
