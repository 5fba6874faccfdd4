import { RingBuffer } from './ring-buffer.js';

/** A change of a service's replica count, with the autoscaler's reason. */
export interface ScaleDecisionRecord {
  from: number;
  to: number;
  reason: string;
}

/** One tick of a service's autoscaler, as `GET /services/{name}/metrics` reports it. */
export interface ScalePoint {
  /** ms */
  t: number;
  /** The metric's newest value (in flight, req/s or the fetched number); null when unknown. */
  metric: number | null;
  desired: number;
  ready: number;
  running: number;
  /** Only on the ticks that changed the count. */
  decision?: ScaleDecisionRecord;
}

export interface ScaleSeriesOptions {
  /** Points older than this (behind the newest) are dropped. */
  maxAgeMs?: number;
  /** A bound whatever the tick rate: 30 min at a 0.5 s tick fits the default. */
  maxPoints?: number;
}

export const DEFAULT_SERIES_AGE_MS = 30 * 60_000;
export const DEFAULT_SERIES_POINTS = 4096;

/** The recent history of one service's scaling, bounded in age and count, in memory only. */
export class ScaleSeries {
  private readonly points: RingBuffer<ScalePoint>;
  private readonly maxAgeMs: number;

  constructor(options: ScaleSeriesOptions = {}) {
    this.maxAgeMs = options.maxAgeMs ?? DEFAULT_SERIES_AGE_MS;
    this.points = new RingBuffer(options.maxPoints ?? DEFAULT_SERIES_POINTS);
  }

  get size(): number {
    return this.points.size;
  }

  /**
   * Appends a point. Times are kept unique and increasing (a point in the same millisecond
   * as the newest, or before it, is placed 1 ms after it), so a reader's cursor on `t`
   * (`since`) misses nothing: a wake and the tick it pokes often share a millisecond.
   */
  add(point: ScalePoint): void {
    const newest = this.points.newest();
    if (newest && point.t <= newest.t) point = { ...point, t: newest.t + 1 };
    this.points.push(point);
    const horizon = point.t - this.maxAgeMs;
    while (this.points.size > 0 && (this.points.oldest() as ScalePoint).t < horizon) this.points.shift();
  }

  /** The points after t (exclusive, so a poller passing the last t it saw gets no repeats), oldest first. */
  since(t: number): ScalePoint[] {
    return this.points.toArray().filter((p) => p.t > t);
  }

  latest(): ScalePoint | undefined {
    return this.points.newest();
  }
}

/** A point for a tick, with the decision attached only when it changed the count. */
export function scalePoint(
  t: number,
  metric: number | null,
  counts: { ready: number; running: number },
  decision: { from: number; desired: number; reason: string },
): ScalePoint {
  const point: ScalePoint = { t, metric, desired: decision.desired, ready: counts.ready, running: counts.running };
  if (decision.desired !== decision.from) point.decision = { from: decision.from, to: decision.desired, reason: decision.reason };
  return point;
}
