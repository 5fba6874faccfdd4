import type { AutoscaleSettings } from './autoscale-settings.js';
import { RingBuffer } from './ring-buffer.js';

export interface MetricSample {
  /** ms (the daemon's clock) */
  t: number;
  value: number;
}

export interface MetricWindowOptions {
  /** How far back averages may look: the longest window asked of `average`. */
  horizonMs: number;
  /** A bound whatever the tick rate; when reached, the oldest samples go first. */
  maxSamples?: number;
}

export const DEFAULT_MAX_SAMPLES = 4096;

/**
 * The recent samples of one service's metric, time-stamped, in a ring buffer bounded by the
 * longest window and a sample count.
 *
 * A sample stands for the interval since the sample before it (a rate measured over that
 * interval; a gauge seen at its end), so the newest sample weighs in at once and averages
 * are weighted by time: the same load gives the same average whether the tick is 100 ms or
 * 2 s, and a late or missed tick does not skew it.
 */
export class MetricWindow {
  private readonly samples: RingBuffer<MetricSample>;
  private readonly horizonMs: number;
  private lastDemand: number | null = null;

  constructor(options: MetricWindowOptions) {
    if (!(options.horizonMs > 0)) throw new RangeError(`metric window horizon must be above 0 ms, got ${options.horizonMs}`);
    this.horizonMs = options.horizonMs;
    this.samples = new RingBuffer(options.maxSamples ?? DEFAULT_MAX_SAMPLES);
  }

  /** A window long enough for the settings' stable and panic averages. */
  static forSettings(settings: AutoscaleSettings, maxSamples?: number): MetricWindow {
    const horizonMs = Math.max(settings.stableWindowMs, settings.panicWindowMs);
    return new MetricWindow(maxSamples === undefined ? { horizonMs } : { horizonMs, maxSamples });
  }

  get size(): number {
    return this.samples.size;
  }

  /** The time of the last sample above zero (null: none seen). Survives the ring's pruning. */
  get lastNonZeroAt(): number | null {
    return this.lastDemand;
  }

  latest(): MetricSample | undefined {
    return this.samples.newest();
  }

  /**
   * Adds a sample. A negative value counts as 0 (a metric of demand has no negative); a
   * non-finite one is the caller's bug (validate fetched JSON first). A time before the
   * newest sample means the clock stepped back: the window starts over rather than weigh
   * samples by a broken clock, and any demand seen counts as seen now, which restarts the
   * scale-to-zero grace instead of cutting it short.
   */
  record(t: number, value: number): void {
    if (!Number.isFinite(t) || !Number.isFinite(value)) throw new RangeError(`metric sample must be finite, got t=${t} value=${value}`);
    const v = Math.max(0, value);
    const newest = this.samples.newest();
    if (newest && t < newest.t) {
      this.samples.clear();
      if (this.lastDemand !== null) this.lastDemand = t;
    }
    this.samples.push({ t, value: v });
    if (v > 0) this.lastDemand = t;
    // Keep one sample at or before the horizon: it marks where the next one's interval starts.
    const horizon = t - this.horizonMs;
    while (this.samples.size >= 2 && (this.samples.at(1) as MetricSample).t <= horizon) this.samples.shift();
  }

  /**
   * The time-weighted average over (now - windowMs, now], over the part of it the samples
   * cover. With no interval in it (the first sample only), the mean of the samples in it.
   * Undefined with no sample in it at all: the metric is unknown (a fetch failing), which
   * the caller must not mistake for zero demand.
   */
  average(now: number, windowMs: number): number | undefined {
    const start = now - windowMs;
    let sum = 0;
    let weight = 0;
    let inWindow = 0;
    let inWindowSum = 0;
    for (let i = 0; i < this.samples.size; i++) {
      const s = this.samples.at(i) as MetricSample;
      if (s.t > start && s.t <= now) {
        inWindow++;
        inWindowSum += s.value;
      }
      if (i === 0) continue;
      const from = Math.max((this.samples.at(i - 1) as MetricSample).t, start);
      const to = Math.min(s.t, now);
      if (to > from) {
        sum += s.value * (to - from);
        weight += to - from;
      }
    }
    if (weight > 0) return sum / weight;
    return inWindow > 0 ? inWindowSum / inWindow : undefined;
  }
}

export interface CounterReading {
  t: number;
  /** A monotonically increasing count, e.g. requests served since the counter started. */
  total: number;
}

/**
 * Per second between two readings of a counter; undefined when no time passed. A total below
 * the one before means the counter started again from zero (a daemon restart): the requests
 * since are the new total, so the rate is never negative.
 */
export function counterRate(prev: CounterReading, next: CounterReading): number | undefined {
  const dt = next.t - prev.t;
  if (!(dt > 0)) return undefined;
  const increase = next.total >= prev.total ? next.total - prev.total : next.total;
  return (increase * 1000) / dt;
}

/** Turns successive readings of a counter into rates; the first reading gives none. */
export class CounterRate {
  private last: CounterReading | undefined;

  observe(t: number, total: number): number | undefined {
    if (!Number.isFinite(t) || !Number.isFinite(total) || total < 0) throw new RangeError(`counter reading must be finite and not negative, got t=${t} total=${total}`);
    const prev = this.last;
    this.last = { t, total };
    return prev === undefined ? undefined : counterRate(prev, this.last);
  }
}
