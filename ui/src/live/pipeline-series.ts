import type { PipelineSample } from './store';

/** The image pipeline over time, derived from the `pipeline` samples (pure, for charts). */
export interface PipelineSeries {
  /** seconds since the epoch (uPlot's time unit) */
  t: number[];
  /** tasks waiting or being worked on: ready + leased */
  backlog: number[];
  /** tasks done per second since the previous sample; null for the first, or when `done` went down (a new run) */
  throughput: (number | null)[];
}

export function throughputBetween(a: PipelineSample, b: PipelineSample): number | null {
  const seconds = (b.at - a.at) / 1000;
  const done = b.stats.done - a.stats.done;
  if (seconds <= 0 || done < 0) return null;
  return done / seconds;
}

export function pipelineSeries(samples: readonly PipelineSample[]): PipelineSeries {
  const out: PipelineSeries = { t: [], backlog: [], throughput: [] };
  samples.forEach((s, i) => {
    const prev = samples[i - 1];
    out.t.push(s.at / 1000);
    out.backlog.push(s.stats.ready + s.stats.leased);
    out.throughput.push(prev ? throughputBetween(prev, s) : null);
  });
  return out;
}

/** Done per second over the last windowMs (smoother than the last interval alone); null without two samples. */
export function recentThroughput(samples: readonly PipelineSample[], windowMs = 10_000): number | null {
  const last = samples[samples.length - 1];
  if (!last) return null;
  let from: PipelineSample | undefined;
  for (let i = samples.length - 2; i >= 0; i--) {
    const s = samples[i];
    if (!s || last.at - s.at > windowMs || s.stats.done > last.stats.done) break;
    from = s;
  }
  return from ? throughputBetween(from, last) : null;
}
