import type { TraceEntry } from '@uigniter-demo/ics-common/plant-api';

/** Analysis of the plant's trace (GET /trace entries), all on the plant's clock. */
export type TracePoint = TraceEntry;

export type TruthTag = 'level1' | 'level2' | 'temp';

export function maxOf(trace: TracePoint[], tag: TruthTag): number {
  return trace.reduce((max, p) => Math.max(max, p.truth[tag]), Number.NEGATIVE_INFINITY);
}

export function maxDeviation(trace: TracePoint[], tag: TruthTag, setpoint: number): number {
  return trace.reduce((max, p) => Math.max(max, Math.abs(p.truth[tag] - setpoint)), 0);
}

/**
 * Settling time after `from`: the time of the first sample after which the
 * value stays within ±tolerance of the setpoint to the end of the trace
 * (null if it is outside at the end).
 */
export function settlingTimeMs(trace: TracePoint[], tag: TruthTag, setpoint: number, tolerance: number, from: number): number | null {
  const after = trace.filter((p) => p.t >= from);
  if (after.length === 0) return null;
  let lastOutside = -1;
  after.forEach((p, i) => {
    if (Math.abs(p.truth[tag] - setpoint) > tolerance) lastOutside = i;
  });
  if (lastOutside === after.length - 1) return null;
  const settled = after[lastOutside + 1] as TracePoint;
  return lastOutside === -1 ? 0 : Math.round(settled.t - from);
}

/** Overshoot beyond the new setpoint as a fraction of the step (0 when none). */
export function overshoot(trace: TracePoint[], tag: TruthTag, before: number, setpoint: number): number {
  const step = setpoint - before;
  if (step === 0) return 0;
  const extreme = step > 0 ? maxOf(trace, tag) : trace.reduce((min, p) => Math.min(min, p.truth[tag]), Number.POSITIVE_INFINITY);
  return Math.max(0, (extreme - setpoint) / step);
}

export function commandsIn(trace: TracePoint[]): TracePoint['commands'] {
  return trace.flatMap((p) => p.commands);
}
