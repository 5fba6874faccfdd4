import { UigniterError } from '../errors.js';
import type { AutoscaleSettings } from './autoscale-settings.js';

/**
 * The autoscaler's decision: how many replicas a service should have, as a pure function of
 * the metric's averages, the bounds, the settings and an explicit state the caller keeps and
 * passes back. Nothing here starts or stops a VM, reads a clock or fetches a metric, so a
 * table of (time, metric) rows can drive it. Every rule is in time (ms), never in ticks, so
 * the tick length changes how often it runs, not what it decides.
 */

/** The panic window's demand must reach this many times the ready replicas to panic. */
export const PANIC_RATIO = 2;
/** A bound on the remembered stable counts (they only grow when the count falls every tick). */
export const MAX_REMEMBERED_COUNTS = 1024;

export interface ScaleBounds {
  /** 0 lets the service go to zero when idle. */
  min: number;
  /** At least 1 and at least min. */
  max: number;
}

export interface DecideInput {
  /** ms, the same clock as the samples */
  now: number;
  /** The metric's average over settings.stableWindowMs (MetricWindow.average). */
  stable: number;
  /** The metric's average over settings.panicWindowMs. */
  panic: number;
  /** The newest sample: a request held at zero replicas shows here first. */
  latest: number;
  /** When the metric was last above zero; null if never. */
  lastDemandAt: number | null;
  /** Replicas ready to serve: the panic condition compares demand to these. */
  ready: number;
}

/** A stable count seen at t, kept while it is inside the stable window. */
export interface RememberedCount {
  t: number;
  count: number;
}

export interface AutoscaleState {
  /** The count last decided. */
  desired: number;
  /** Idle time is counted from here at the least: a restarted daemon gives a grace before zero. */
  startedAt: number;
  /** When `desired` last changed; null if never. */
  lastChangeAt: number | null;
  /** When panic began; null when not in panic. */
  panicSince: number | null;
  /** The last time the panic condition held; panic ends a stable window after it. */
  panicLastAt: number | null;
  /** The counts the stable window (or a start from zero) asked for within the last stable window, highest first: a sliding maximum. */
  recent: readonly RememberedCount[];
}

export type ScaleChange = 'up' | 'down' | 'none';

export interface Decision {
  /** The count before this decision. */
  from: number;
  desired: number;
  change: ScaleChange;
  /** Human, for logs, events and the metrics series. */
  reason: string;
  panic: boolean;
  /** ceil(metric / target) of each average, before bounds. */
  stableCount: number;
  panicCount: number;
  /** To pass to the next call. */
  state: AutoscaleState;
}

/**
 * The state of a service's autoscaler when it starts (service created, daemon restarted) with
 * `current` replicas. Remembering `current` as seen now keeps a restarted daemon from
 * dropping replicas before a stable window has shown they are not needed.
 */
export function initialAutoscaleState(now: number, current: number): AutoscaleState {
  return {
    desired: current,
    startedAt: now,
    lastChangeAt: null,
    panicSince: null,
    panicLastAt: null,
    recent: current > 0 ? [{ t: now, count: current }] : [],
  };
}

/** Replicas for a demand: ceil(metric / target), without float noise turning 3 into 4. */
export function replicasFor(metric: number, target: number): number {
  if (!(metric > 0)) return 0;
  return Math.max(1, Math.ceil(metric / target - 1e-9));
}

/**
 * The count for a service now, and the state to pass next time. In order:
 * - at zero with min 0 and no demand: stay at zero;
 * - at zero with demand (a held request): at once, at least 1 and enough for what is held;
 * - panic (the panic window asks for >= 2x the ready replicas, until a stable window passes
 *   without that): up at once to what either window asks, never down;
 * - a lowered max: down to it at once;
 * - min 0 and no demand for scaleToZeroAfterMs: zero, once out of cooldown;
 * - the stable window asks for more: up at once;
 * - it asks for less: down only to the highest it asked for within the stable window, and
 *   not within cooldownMs of the last change.
 * Everything is clamped to [min, max].
 */
export function decide(state: AutoscaleState, input: DecideInput, settings: AutoscaleSettings, bounds: ScaleBounds): Decision {
  checkBounds(bounds);
  checkInput(input);
  const { now } = input;
  const { min, max } = bounds;
  const clamp = (n: number): number => Math.min(Math.max(n, min), max);
  const say = describe(settings);

  const stableCount = replicasFor(input.stable, settings.target);
  const panicCount = replicasFor(input.panic, settings.target);
  const demandNow = input.latest > 0 || input.panic > 0;

  // Panic: the short window asks for at least twice what is ready. It lasts until a whole
  // stable window has passed without that; while it lasts, the count never goes down.
  const panicNow = panicCount >= PANIC_RATIO * Math.max(input.ready, 1);
  let panicSince = panicNow ? (state.panicSince ?? now) : state.panicSince;
  let panicLastAt = panicNow ? now : state.panicLastAt;
  if (!panicNow && panicLastAt !== null && now - panicLastAt >= settings.stableWindowMs) {
    panicSince = null;
    panicLastAt = null;
  }
  const inPanic = panicSince !== null;

  // What the stable average asks for, never below one (zero has a rule of its own), and the
  // highest such count over the stable window: a scale-down goes no lower than that.
  const stableTarget = clamp(Math.max(stableCount, 1));
  let recent = remember(state.recent, { t: now, count: stableTarget }, now - settings.stableWindowMs);
  const windowMax = Math.min((recent[0] as RememberedCount).count, max);

  const idleSince = Math.max(input.lastDemandAt ?? -Infinity, state.startedAt);
  const idleFor = demandNow ? 0 : now - idleSince;
  const inCooldown = state.lastChangeAt !== null && now - state.lastChangeAt < settings.cooldownMs;
  const from = state.desired;

  let desired: number;
  let reason: string;
  if (from === 0 && min === 0 && !demandNow) {
    desired = 0;
    reason = 'idle at zero';
  } else if (from === 0 && demandNow) {
    // Requests are held until a replica is up: size for what is held now, since averages
    // over the idle window before it understate it, and waiting for one only delays them.
    desired = clamp(Math.max(1, stableCount, panicCount, replicasFor(input.latest, settings.target)));
    // Counted as asked for by the stable window, or the next tick (whose average still holds
    // the idle time) would take back what this one started.
    recent = remember(recent, { t: now, count: desired }, now - settings.stableWindowMs);
    reason = `from zero: ${say(Math.max(input.latest, input.panic))} -> ${desired}`;
  } else if (inPanic) {
    desired = clamp(Math.max(from, panicCount, stableTarget));
    reason = `panic: ${say(input.panic)} / target ${num(settings.target)} -> ${desired}`;
    if (desired === from && panicCount < from) reason += ' (no scale-down in panic)';
  } else if (from > max) {
    desired = max; // the user lowered max: obeyed at once, whatever the windows say
    reason = `max ${max} -> ${desired}`;
  } else if (min === 0 && idleFor >= settings.scaleToZeroAfterMs) {
    desired = inCooldown ? from : 0;
    reason = `no demand for ${secs(idleFor)} (scale to zero after ${secs(settings.scaleToZeroAfterMs)})`;
    reason += inCooldown ? `, in cooldown: hold ${from}` : ' -> 0';
  } else if (stableTarget >= from) {
    desired = stableTarget;
    reason = `stable: ${say(input.stable)} / target ${num(settings.target)} -> ${desired}`;
  } else if (windowMax >= from) {
    desired = from;
    reason = `stable: ${say(input.stable)} / target ${num(settings.target)} wants ${stableTarget}, but ${windowMax} within the last ${secs(settings.stableWindowMs)}: hold ${from}`;
  } else if (inCooldown) {
    desired = from;
    reason = `stable wants ${windowMax}, in cooldown (${secs(settings.cooldownMs)} after a change): hold ${from}`;
  } else {
    desired = windowMax;
    reason = `stable: ${say(input.stable)} / target ${num(settings.target)}; highest within the last ${secs(settings.stableWindowMs)} ${windowMax} -> ${desired}`;
  }

  const change: ScaleChange = desired > from ? 'up' : desired < from ? 'down' : 'none';
  return {
    from,
    desired,
    change,
    reason,
    panic: inPanic,
    stableCount,
    panicCount,
    state: {
      desired,
      startedAt: state.startedAt,
      lastChangeAt: change === 'none' ? state.lastChangeAt : now,
      panicSince,
      panicLastAt,
      recent,
    },
  };
}

/** Adds a count to the sliding maximum: older ones it outranks and expired ones go. */
function remember(recent: readonly RememberedCount[], next: RememberedCount, expiredAtOrBefore: number): RememberedCount[] {
  const kept = recent.filter((r) => r.t > expiredAtOrBefore && r.count > next.count && r.t <= next.t);
  kept.push(next);
  return kept.length > MAX_REMEMBERED_COUNTS ? kept.slice(kept.length - MAX_REMEMBERED_COUNTS) : kept;
}

function checkBounds({ min, max }: ScaleBounds): void {
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max < 1 || max < min) {
    throw new UigniterError('internal', `autoscale bounds must be integers with 0 <= min <= max and max >= 1, got min ${min} max ${max}`);
  }
}

function checkInput(input: DecideInput): void {
  for (const key of ['now', 'stable', 'panic', 'latest', 'ready'] as const) {
    const v = input[key];
    if (!Number.isFinite(v) || (key !== 'now' && v < 0)) throw new UigniterError('internal', `autoscale input ${key} must be a finite number >= 0, got ${v}`);
  }
}

function describe(settings: AutoscaleSettings): (v: number) => string {
  switch (settings.metric) {
    case 'inflight':
      return (v) => `${num(v)} in flight`;
    case 'rps':
      return (v) => `${num(v)} req/s`;
    case 'http-json':
      return (v) => `${num(v)} ${settings.field ?? 'from ' + (settings.url ?? 'the url')}`;
  }
}

function num(v: number): string {
  return String(Math.round(v * 100) / 100);
}

function secs(ms: number): string {
  return `${num(ms / 1000)}s`;
}
