import { percentile } from '@uigniter-demo/ics-common/percentile';
import type { LatencySummary } from '@uigniter-demo/ics-common/plant-api';
import type { Actuator } from '@uigniter-demo/ics-common/process-limits';

export interface LatencySample {
  /** Plant time (ms) the command was applied. */
  t: number;
  seq: number;
  actuator: Actuator;
  latencyMs: number;
}

export interface DeadlineMiss {
  t: number;
  kind: 'late' | 'no-command';
  latencyMs?: number;
}

/**
 * Loop latency as the plant itself sees it: the time a controller command is
 * applied minus the sample time of the reading it answers (its seq), both
 * on the plant's clock, so other machines' clocks do not matter.
 *
 * A deadline is missed when a command's latency exceeds it, or when no
 * controller command at all arrives for `deadlineMs` (counted once per
 * deadline-long gap). Gaps are counted only after the first command, so
 * the time before the controllers start is not a miss.
 */
export class LatencyMonitor {
  private readonly sampleTimes = new Map<number, number>();
  private readonly samples: LatencySample[] = [];
  private readonly misses: DeadlineMiss[] = [];
  private lastCommandAt: number | undefined;
  private gapCountedAt = 0;

  constructor(
    readonly deadlineMs: number,
    private readonly keep = 20_000,
  ) {}

  recordSample(seq: number, sampleTime: number): void {
    this.sampleTimes.set(seq, sampleTime);
    // Keep the last 600 sample times (a minute at 100 ms): older answers are misses anyway.
    if (this.sampleTimes.size > 600) {
      const oldest = this.sampleTimes.keys().next().value;
      if (oldest !== undefined) this.sampleTimes.delete(oldest);
    }
  }

  /** Records a controller command applied at plant time `now`; returns its latency if its reading is known. */
  recordCommand(actuator: Actuator, seq: number, now: number): number | undefined {
    this.lastCommandAt = now;
    const sampled = this.sampleTimes.get(seq);
    if (sampled === undefined) return undefined;
    const latencyMs = now - sampled;
    this.push(this.samples, { t: now, seq, actuator, latencyMs });
    if (latencyMs > this.deadlineMs) this.push(this.misses, { t: now, kind: 'late', latencyMs });
    return latencyMs;
  }

  /** Called every step: counts a miss for each deadline-long stretch without any command. */
  checkGap(now: number): void {
    if (this.lastCommandAt === undefined) return;
    const since = Math.max(this.lastCommandAt, this.gapCountedAt);
    if (now - since > this.deadlineMs) {
      this.gapCountedAt = now;
      this.push(this.misses, { t: now, kind: 'no-command' });
    }
  }

  report(since: number): LatencySummary & { misses: DeadlineMiss[]; samples: LatencySample[] } {
    const samples = this.samples.filter((s) => s.t > since);
    const latencies = samples.map((s) => s.latencyMs);
    const misses = this.misses.filter((m) => m.t > since);
    return {
      deadlineMs: this.deadlineMs,
      count: samples.length,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies.length === 0 ? 0 : Math.max(...latencies),
      deadlineMisses: misses.length,
      late: misses.filter((m) => m.kind === 'late').length,
      noCommand: misses.filter((m) => m.kind === 'no-command').length,
      misses: misses.slice(-100),
      samples: samples.slice(-300),
    };
  }

  private push<T>(list: T[], item: T): void {
    list.push(item);
    if (list.length > this.keep) list.splice(0, list.length - this.keep);
  }
}
