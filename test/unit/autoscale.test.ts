import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AUTOSCALE_DEFAULTS, checkAutoscale, type AutoscaleSettings } from '../../src/core/autoscale/autoscale-settings.js';
import { decide, initialAutoscaleState, replicasFor, type AutoscaleState, type Decision } from '../../src/core/autoscale/decide.js';
import { CounterRate, counterRate, MetricWindow } from '../../src/core/autoscale/metric-window.js';
import { ScaleSeries, scalePoint } from '../../src/core/autoscale/scale-series.js';
import { UigniterError } from '../../src/core/errors.js';

// A row: at time t (ms) the metric is sampled; `want` (when given) is the count decided then.
type Row = readonly [t: number, metric: number, want?: number];

interface Sim {
  settings?: Partial<AutoscaleSettings>;
  min?: number;
  max?: number;
  /** Replicas when the autoscaler starts. */
  initial?: number;
  start?: number;
}

interface Tick {
  t: number;
  metric: number;
  decision: Decision;
}

/** Rows every `every` ms from `from` to `to` inclusive. */
function span(from: number, to: number, every: number, metric: number, want?: number): Row[] {
  const rows: Row[] = [];
  for (let t = from; t <= to; t += every) rows.push(want === undefined ? [t, metric] : [t, metric, want]);
  return rows;
}

/**
 * Drives the real pieces the way the service reconciler will: record the sample, take the
 * two averages, decide, keep the state. Replicas are taken to be ready by the next tick.
 */
function simulate(rows: readonly Row[], sim: Sim = {}): Tick[] {
  const settings = checkAutoscale({ metric: 'inflight', target: 10, ...sim.settings });
  const bounds = { min: sim.min ?? 0, max: sim.max ?? 100 };
  const window = MetricWindow.forSettings(settings);
  let state: AutoscaleState = initialAutoscaleState(sim.start ?? 0, sim.initial ?? 0);
  let ready = sim.initial ?? 0;
  const ticks: Tick[] = [];
  for (const [t, metric] of rows) {
    window.record(t, metric);
    const decision = decide(
      state,
      {
        now: t,
        stable: window.average(t, settings.stableWindowMs) ?? 0,
        panic: window.average(t, settings.panicWindowMs) ?? 0,
        latest: metric,
        lastDemandAt: window.lastNonZeroAt,
        ready,
      },
      settings,
      bounds,
    );
    state = decision.state;
    ready = decision.desired;
    ticks.push({ t, metric, decision });
  }
  return ticks;
}

function expectRows(rows: readonly Row[], sim: Sim = {}): Tick[] {
  const ticks = simulate(rows, sim);
  rows.forEach(([t, metric, want], i) => {
    if (want === undefined) return;
    const d = (ticks[i] as Tick).decision;
    assert.equal(d.desired, want, `t=${t} metric=${metric}: want ${want}, got ${d.desired} (${d.reason})`);
  });
  return ticks;
}

const at = (ticks: Tick[], t: number): Decision => {
  const tick = ticks.find((x) => x.t === t);
  assert.ok(tick, `no tick at ${t}`);
  return tick.decision;
};

const changes = (ticks: Tick[]): Tick[] => ticks.filter((x) => x.decision.change !== 'none');

describe('autoscale decision', () => {
  it('steady load keeps a steady count', () => {
    const rows = span(0, 180_000, 2000, 25, 3);
    const ticks = expectRows(rows, { initial: 3, min: 1 });
    assert.equal(changes(ticks).length, 0);
    assert.ok(ticks.every((x) => !x.decision.panic));
  });

  it('a rise below twice what is ready follows the stable window, without panic', () => {
    // 2 ready at 20 in flight; 30 asks for 3, less than 2 x 2: no panic, scale up at once.
    const ticks = simulate([...span(0, 10_000, 2000, 20), ...span(12_000, 120_000, 2000, 30)], { initial: 2, min: 1 });
    assert.equal(at(ticks, 10_000).desired, 2);
    assert.equal(at(ticks, 12_000).desired, 3);
    assert.equal(at(ticks, 120_000).desired, 3);
    assert.equal(changes(ticks).length, 1);
    assert.ok(ticks.every((x) => !x.decision.panic), 'a rise to 1.5x of what is ready is no panic');
  });

  it('a burst panics and scales up within one tick, then grows each tick', () => {
    const rows: Row[] = [...span(0, 20_000, 2000, 10, 1), [22_000, 100, 4], [24_000, 100, 7], [26_000, 100, 10]];
    const ticks = expectRows(rows, { initial: 1, min: 1 });
    const burst = at(ticks, 22_000);
    assert.equal(burst.panic, true);
    assert.equal(burst.change, 'up');
    assert.equal(burst.reason, 'panic: 40 in flight / target 10 -> 4');
    assert.equal(at(ticks, 20_000).panic, false);
  });

  it('a burst is caught within one tick whatever the tick length', () => {
    for (const every of [500, 1000, 2000]) {
      const ticks = simulate([...span(0, 20_000, every, 10), ...span(20_000 + every, 30_000, every, 100)], { initial: 1, min: 1 });
      const first = at(ticks, 20_000 + every);
      assert.equal(first.panic, true, `tick ${every} ms: ${first.reason}`);
      assert.ok(first.desired >= 2, `tick ${every} ms: ${first.reason}`);
      assert.equal(at(ticks, 30_000).desired, 10, `tick ${every} ms`);
    }
  });

  it('no scale-down while in panic; panic ends a stable window after its condition last held', () => {
    // Burst to 100 at 22 s (panic condition holds on the ticks up to 24 s: 7 >= 2 x 4 is false
    // at 24 s, so the last tick it held is 22 s), then back to 10 at 40 s.
    const ticks = simulate([...span(0, 20_000, 2000, 10), ...span(22_000, 38_000, 2000, 100), ...span(40_000, 200_000, 2000, 10)], {
      initial: 1,
      min: 1,
    });
    const panicking = ticks.filter((x) => x.decision.panic).map((x) => x.t);
    assert.equal(panicking[0], 22_000);
    assert.equal(panicking.at(-1), 80_000, 'panic lasts until 60 s after 22 s');
    for (const t of panicking) assert.ok(at(ticks, t).change !== 'down', `scaled down in panic at ${t}`);
    assert.equal(at(ticks, 80_000).desired, 10);
    assert.equal(at(ticks, 200_000).desired, 1, 'back to the load once panic and the window are over');
  });

  it('a drop in load: no scale-down before a stable window, then down in steps of one, never back up', () => {
    // 100 in flight until 60 s, 20 after. The stable average (60 s) first asks for fewer than
    // 10 at 68 s, so 10 is last asked for at 66 s and leaves the window at 126 s.
    const rows: Row[] = [...span(0, 60_000, 2000, 100, 10), ...span(62_000, 124_000, 2000, 20, 10), [126_000, 20, 9], ...span(128_000, 240_000, 2000, 20)];
    const ticks = expectRows(rows, { initial: 10, min: 1 });
    const downs = changes(ticks);
    assert.ok(downs.length >= 2);
    assert.ok(downs.every((x) => x.decision.change === 'down' && x.decision.desired === x.decision.from - 1), 'steps of one, down only');
    assert.equal(at(ticks, 240_000).desired, 2, 'settles at ceil(20 / 10)');
    assert.equal(downs.at(-1)?.decision.desired, 2);
  });

  it('the first scale-down comes at the same time (within a tick) at 0.5 s and 2 s ticks', () => {
    const firstDown = (every: number): number => {
      const ticks = simulate([...span(0, 60_000, every, 100), ...span(60_000 + every, 200_000, every, 20)], { initial: 10, min: 1 });
      const down = changes(ticks).find((x) => x.decision.change === 'down');
      assert.ok(down, `no scale-down at a ${every} ms tick`);
      return down.t;
    };
    const slow = firstDown(2000);
    const fast = firstDown(500);
    assert.equal(slow, 126_000);
    assert.ok(Math.abs(slow - fast) <= 2000, `2 s tick: ${slow}, 0.5 s tick: ${fast}`);
  });

  it('a noisy load does not flap', () => {
    const rows: Row[] = [];
    for (let t = 0; t <= 300_000; t += 2000) rows.push([t, (t / 2000) % 2 === 0 ? 22 : 38]);
    const ticks = simulate(rows, { initial: 3, min: 1 });
    const later = changes(ticks).filter((x) => x.t > 60_000);
    assert.ok(later.length <= 1, `changed ${later.length} times: ${later.map((x) => `${x.t}: ${x.decision.reason}`).join('; ')}`);
  });

  it('cooldown: no scale-down within cooldownMs of the last change, even when the window allows it', () => {
    // 2 replicas at 20; 30 at 10 s scales up to 3; back to 20 at 12 s. With a 6 s stable window
    // the count 3 is last asked for at 14 s, so the window allows a scale-down at 20 s.
    const rows: Row[] = [...span(0, 8000, 2000, 20, 2), [10_000, 30, 3], ...span(12_000, 40_000, 2000, 20)];
    const short = { stableWindowMs: 6000, panicWindowMs: 2000 };
    const free = simulate(rows, { initial: 2, min: 1, settings: { ...short, cooldownMs: 0 } });
    assert.equal(at(free, 18_000).desired, 3);
    assert.equal(at(free, 20_000).desired, 2, 'without cooldown the window alone decides');
    const cooled = expectRows(
      rows.map(([t, m]): Row => [t, m, t < 10_000 ? 2 : t < 30_000 ? 3 : 2]),
      { initial: 2, min: 1, settings: { ...short, cooldownMs: 20_000 } },
    );
    assert.match(at(cooled, 28_000).reason, /cooldown/);
  });

  it('scale-up does not wait for cooldown', () => {
    // Up to 3 at 10 s; at 12 s the stable average is (20 + 30 + 50) / 3, which asks for 4.
    const rows: Row[] = [...span(0, 8000, 2000, 20, 2), [10_000, 30, 3], [12_000, 50, 4]];
    expectRows(rows, { initial: 2, min: 1, settings: { stableWindowMs: 6000, panicWindowMs: 2000, cooldownMs: 60_000 } });
  });

  it('scales to zero after the grace, not before', () => {
    // Demand last at 10 s; scaleToZeroAfterMs 30 s.
    const rows: Row[] = [...span(0, 10_000, 2000, 5, 1), ...span(12_000, 38_000, 2000, 0, 1), [40_000, 0, 0], ...span(42_000, 60_000, 2000, 0, 0)];
    const ticks = expectRows(rows, { initial: 1, min: 0 });
    assert.match(at(ticks, 40_000).reason, /no demand for 30s/);
  });

  it('never to zero when min is above 0', () => {
    expectRows([...span(0, 10_000, 2000, 5, 1), ...span(12_000, 300_000, 2000, 0, 1)], { initial: 1, min: 1 });
  });

  it('zero waits for the cooldown after the last change', () => {
    // Scaled up to 1 at 0 s; a 45 s cooldown outlasts the 30 s grace.
    expectRows([[0, 1, 1], ...span(2000, 44_000, 2000, 0, 1), [46_000, 0, 0]], { initial: 0, min: 0, settings: { cooldownMs: 45_000 } });
  });

  it('a service started idle with min 0 stays at zero, and one started with a replica gets the grace', () => {
    expectRows(span(0, 60_000, 2000, 0, 0), { initial: 0, min: 0 });
    expectRows([...span(0, 28_000, 2000, 0, 1), ...span(30_000, 40_000, 2000, 0, 0)], { initial: 1, min: 0 });
  });

  it('from zero, one held request gives 1 at once', () => {
    const ticks = expectRows([...span(0, 10_000, 2000, 0, 0), [12_000, 1, 1], [14_000, 1, 1]], { initial: 0, min: 0 });
    assert.equal(at(ticks, 12_000).change, 'up');
    assert.equal(at(ticks, 12_000).reason, 'from zero: 1 in flight -> 1');
  });

  it('from zero, 37 held requests give 4 at once (the held count, not an average over the idle window)', () => {
    const ticks = expectRows([...span(0, 10_000, 2000, 0, 0), [12_000, 37, 4]], { initial: 0, min: 0 });
    assert.equal(at(ticks, 12_000).panic, true);
  });

  it('what a start from zero asks for is not taken back while the stable average catches up', () => {
    // 12 held: 2 at once; the stable average still holds the idle time and asks for 1.
    const ticks = expectRows([...span(0, 10_000, 2000, 0, 0), ...span(12_000, 180_000, 2000, 12, 2)], { initial: 0, min: 0 });
    assert.equal(at(ticks, 14_000).stableCount, 1);
  });

  it('from zero a request comes at once even inside the cooldown', () => {
    // To zero at 30 s (30 s after the last demand); a request 2 s later, inside a 10 s cooldown.
    expectRows([[0, 1, 1], ...span(2000, 28_000, 2000, 0, 1), [30_000, 0, 0], [32_000, 1, 1]], { initial: 0, min: 0, settings: { cooldownMs: 10_000 } });
  });

  it('clamps to max and min', () => {
    expectRows(span(0, 20_000, 2000, 1000, 5), { initial: 1, min: 1, max: 5 });
    expectRows(span(0, 20_000, 2000, 0, 2), { initial: 0, min: 2, max: 5 });
  });

  it('a lowered max is obeyed at once; a raised min too', () => {
    const settings = checkAutoscale({ metric: 'inflight', target: 10 });
    const input = { now: 10_000, stable: 80, panic: 80, latest: 80, lastDemandAt: 10_000, ready: 8 };
    const state = initialAutoscaleState(0, 8);
    assert.equal(decide(state, input, settings, { min: 1, max: 8 }).desired, 8);
    assert.equal(decide(state, input, settings, { min: 1, max: 3 }).desired, 3);
    assert.equal(decide(state, { ...input, stable: 10, panic: 10, latest: 10 }, settings, { min: 9, max: 20 }).desired, 9);
  });

  it('rejects impossible bounds and inputs as a bug, not a user error', () => {
    const settings = checkAutoscale({ metric: 'inflight', target: 10 });
    const input = { now: 0, stable: 0, panic: 0, latest: 0, lastDemandAt: null, ready: 0 };
    const state = initialAutoscaleState(0, 0);
    const internal = (e: unknown): boolean => e instanceof UigniterError && e.code === 'internal';
    assert.throws(() => decide(state, input, settings, { min: 3, max: 2 }), internal);
    assert.throws(() => decide(state, input, settings, { min: 0, max: 0 }), internal);
    assert.throws(() => decide(state, { ...input, stable: Number.NaN }, settings, { min: 0, max: 2 }), internal);
  });

  it('replicasFor is ceil(metric / target) without float noise', () => {
    const table: [number, number, number][] = [
      [0, 10, 0],
      [0.01, 10, 1],
      [10, 10, 1],
      [10.5, 10, 2],
      [30, 10, 3],
      [0.3, 0.1, 3],
      [37, 10, 4],
    ];
    for (const [metric, target, want] of table) assert.equal(replicasFor(metric, target), want, `${metric} / ${target}`);
  });

  it('the state is explicit: deciding twice from the same state gives the same decision', () => {
    const settings = checkAutoscale({ metric: 'inflight', target: 10 });
    const state = initialAutoscaleState(0, 1);
    const input = { now: 2000, stable: 40, panic: 40, latest: 40, lastDemandAt: 2000, ready: 1 };
    const a = decide(state, input, settings, { min: 1, max: 10 });
    const b = decide(state, input, settings, { min: 1, max: 10 });
    assert.deepEqual(a, b);
    assert.deepEqual(state, initialAutoscaleState(0, 1), 'the state passed in is not changed');
  });
});

describe('rps from a request counter', () => {
  it('derives a rate, and a counter reset gives the requests since, never a negative rate', () => {
    const rate = new CounterRate();
    const table: [t: number, total: number, want: number | undefined][] = [
      [0, 0, undefined],
      [1000, 50, 50],
      [3000, 150, 50],
      [5000, 20, 10], // restarted: 20 requests since, over 2 s
      [6000, 40, 20],
      [6000, 45, undefined], // no time passed
      [7000, 45, 0],
    ];
    for (const [t, total, want] of table) assert.equal(rate.observe(t, total), want, `t=${t} total=${total}`);
    assert.equal(counterRate({ t: 0, total: 1000 }, { t: 1000, total: 0 }), 0);
  });

  it('scales on the rate', () => {
    const settings = { metric: 'rps' as const, target: 20 };
    const rate = new CounterRate();
    const rows: Row[] = [];
    let total = 0;
    for (let t = 0; t <= 60_000; t += 2000) {
      const r = rate.observe(t, total);
      if (r !== undefined) rows.push([t, r]);
      total += t < 30_000 ? 2 * 30 : 2 * 70; // 30 req/s, then 70 req/s
      if (t === 40_000) total = 0; // the counter restarts
    }
    const ticks = simulate(rows, { initial: 2, min: 1, settings });
    assert.ok(ticks.every((x) => x.metric >= 0));
    assert.equal(at(ticks, 20_000).desired, 2);
    assert.equal(at(ticks, 60_000).desired, 4, 'ceil(70 / 20)');
  });
});

describe('metric window', () => {
  it('averages by time, the same at any tick length', () => {
    for (const every of [250, 500, 2000]) {
      const w = new MetricWindow({ horizonMs: 60_000 });
      for (let t = 0; t <= 60_000; t += every) w.record(t, t <= 30_000 ? 10 : 40);
      assert.equal(w.average(60_000, 60_000), 25, `tick ${every}`);
      assert.equal(w.average(60_000, 6000), 40, `tick ${every}`);
    }
  });

  it('weighs an irregular tick by the time it covers', () => {
    const w = new MetricWindow({ horizonMs: 10_000 });
    w.record(0, 0);
    w.record(1000, 10); // (0, 1 s]
    w.record(9000, 2); // (1 s, 9 s]
    assert.equal(w.average(9000, 9000), (10 * 1000 + 2 * 8000) / 9000);
  });

  it('a first sample counts alone; no sample in the window is unknown, not zero', () => {
    const w = new MetricWindow({ horizonMs: 60_000 });
    assert.equal(w.average(0, 6000), undefined);
    w.record(1000, 37);
    assert.equal(w.average(1000, 6000), 37);
    assert.equal(w.average(100_000, 6000), undefined);
  });

  it('is bounded by the horizon and by a count', () => {
    const byTime = new MetricWindow({ horizonMs: 10_000 });
    for (let t = 0; t <= 100_000; t += 1000) byTime.record(t, 1);
    assert.equal(byTime.size, 11, 'the horizon plus the one marking where it starts');
    const byCount = new MetricWindow({ horizonMs: 60_000, maxSamples: 8 });
    for (let t = 0; t <= 60_000; t += 100) byCount.record(t, 1);
    assert.equal(byCount.size, 8);
    assert.equal(byCount.average(60_000, 60_000), 1);
  });

  it('remembers the last demand past its horizon, takes negatives as zero', () => {
    const w = new MetricWindow({ horizonMs: 1000 });
    w.record(0, 3);
    for (let t = 1000; t <= 10_000; t += 1000) w.record(t, t === 5000 ? -4 : 0);
    assert.equal(w.lastNonZeroAt, 0);
    assert.equal(w.average(10_000, 10_000), 0);
    assert.throws(() => w.record(11_000, Number.NaN), RangeError);
  });

  it('starts over when the clock steps back, counting the demand seen as now', () => {
    const w = new MetricWindow({ horizonMs: 60_000 });
    w.record(100_000, 5);
    w.record(102_000, 0);
    w.record(50_000, 0);
    assert.equal(w.size, 1);
    assert.equal(w.lastNonZeroAt, 50_000);
    assert.equal(w.average(50_000, 6000), 0);
  });
});

describe('scale series', () => {
  it('since(t) returns the points after t, oldest first', () => {
    const s = new ScaleSeries();
    for (let t = 0; t <= 10_000; t += 2000) s.add({ t, metric: t, desired: 1, ready: 1, running: 1 });
    assert.deepEqual(s.since(4000).map((p) => p.t), [6000, 8000, 10_000]);
    assert.equal(s.since(-Infinity).length, 6);
    assert.deepEqual(s.since(10_000), []);
  });

  it('is bounded by age and by count', () => {
    const aged = new ScaleSeries({ maxAgeMs: 30 * 60_000 });
    for (let t = 0; t <= 60 * 60_000; t += 2000) aged.add({ t, metric: 0, desired: 1, ready: 1, running: 1 });
    assert.equal(aged.since(-Infinity)[0]?.t, 30 * 60_000);
    assert.equal(aged.size, 30 * 30 + 1);
    const counted = new ScaleSeries({ maxPoints: 100 });
    for (let t = 0; t < 1000; t++) counted.add({ t, metric: 0, desired: 1, ready: 1, running: 1 });
    assert.equal(counted.size, 100);
    assert.equal(counted.latest()?.t, 999);
    assert.equal(counted.since(-Infinity)[0]?.t, 900);
  });

  it('two points in one millisecond both reach a reader whose cursor is the last t it saw', () => {
    const s = new ScaleSeries();
    s.add({ t: 1000, metric: 0, desired: 0, ready: 0, running: 0 });
    const cursor = s.latest()!.t;
    // A wake at the gateway and the tick it pokes, in the same millisecond.
    s.add(scalePoint(2000, 0, { ready: 0, running: 0 }, { from: 0, desired: 1, reason: 'woken' }));
    s.add({ t: 2000, metric: 0, desired: 1, ready: 0, running: 0 });
    const seen = s.since(cursor);
    assert.equal(seen.length, 2);
    assert.deepEqual(seen.map((p) => p.t), [2000, 2001]);
    assert.equal(seen[0]!.decision?.reason, 'woken', 'the decision is not overwritten by the tick');
    assert.deepEqual(s.since(2000).map((p) => p.t), [2001]);
  });

  it('a point carries the decision only when the count changed', () => {
    const changed = scalePoint(2000, 37, { ready: 0, running: 1 }, { from: 0, desired: 4, reason: 'from zero: 37 in flight -> 4' });
    assert.deepEqual(changed.decision, { from: 0, to: 4, reason: 'from zero: 37 in flight -> 4' });
    const held = scalePoint(4000, 37, { ready: 4, running: 4 }, { from: 4, desired: 4, reason: 'stable' });
    assert.equal('decision' in held, false);
  });
});

describe('autoscale settings', () => {
  it('fills in the defaults', () => {
    assert.deepEqual(checkAutoscale({ metric: 'inflight', target: 10 }), { metric: 'inflight', target: 10, ...AUTOSCALE_DEFAULTS });
    assert.deepEqual(checkAutoscale({ metric: 'http-json', target: 5, url: 'http://db:8080/stats', field: 'queue.pending', cooldownMs: 0 }), {
      metric: 'http-json',
      target: 5,
      url: 'http://db:8080/stats',
      field: 'queue.pending',
      ...AUTOSCALE_DEFAULTS,
      cooldownMs: 0,
    });
  });

  const bad: [input: unknown, field: string][] = [
    [null, 'autoscale'],
    [[], 'autoscale'],
    [{ target: 10 }, 'autoscale.metric'],
    [{ metric: 'cpu', target: 10 }, 'autoscale.metric'],
    [{ metric: 'inflight' }, 'autoscale.target'],
    [{ metric: 'inflight', target: 0 }, 'autoscale.target'],
    [{ metric: 'inflight', target: -1 }, 'autoscale.target'],
    [{ metric: 'inflight', target: '10' }, 'autoscale.target'],
    [{ metric: 'inflight', target: Number.POSITIVE_INFINITY }, 'autoscale.target'],
    [{ metric: 'http-json', target: 1 }, 'autoscale.url'],
    [{ metric: 'http-json', target: 1, url: 'ftp://db/stats' }, 'autoscale.url'],
    [{ metric: 'http-json', target: 1, url: 'db:8080/stats' }, 'autoscale.url'],
    [{ metric: 'http-json', target: 1, url: 'not a url' }, 'autoscale.url'],
    [{ metric: 'http-json', target: 1, url: 'http://db/', field: 'a..b' }, 'autoscale.field'],
    [{ metric: 'http-json', target: 1, url: 'http://db/', field: 3 }, 'autoscale.field'],
    [{ metric: 'inflight', target: 1, url: 'http://db/' }, 'autoscale.url'],
    [{ metric: 'rps', target: 1, field: 'x' }, 'autoscale.field'],
    [{ metric: 'inflight', target: 1, stableWindowMs: 0 }, 'autoscale.stableWindowMs'],
    [{ metric: 'inflight', target: 1, stableWindowMs: 1.5 }, 'autoscale.stableWindowMs'],
    [{ metric: 'inflight', target: 1, panicWindowMs: -6000 }, 'autoscale.panicWindowMs'],
    [{ metric: 'inflight', target: 1, scaleToZeroAfterMs: 0 }, 'autoscale.scaleToZeroAfterMs'],
    [{ metric: 'inflight', target: 1, cooldownMs: -1 }, 'autoscale.cooldownMs'],
    [{ metric: 'inflight', target: 1, cooldownMs: '2s' }, 'autoscale.cooldownMs'],
    [{ metric: 'inflight', target: 1, stableWindowMs: 7_200_000 }, 'autoscale.stableWindowMs'],
    [{ metric: 'inflight', target: 1, panicWindowMs: 90_000 }, 'autoscale.panicWindowMs'],
    [{ metric: 'inflight', target: 1, stableWindowMs: 5000 }, 'autoscale.panicWindowMs'],
    [{ metric: 'inflight', target: 1, stableWindow: 60_000 }, 'autoscale.stableWindow'],
  ];
  for (const [input, field] of bad) {
    it(`refuses ${JSON.stringify(input)} naming ${field}`, () => {
      assert.throws(
        () => checkAutoscale(input),
        (e: unknown) => e instanceof UigniterError && e.code === 'invalid_argument' && e.field === field,
      );
    });
  }

  it('names fields under the path it is given', () => {
    assert.throws(
      () => checkAutoscale({ metric: 'inflight', target: 0 }, 'service.autoscale'),
      (e: unknown) => e instanceof UigniterError && e.field === 'service.autoscale.target',
    );
  });
});
