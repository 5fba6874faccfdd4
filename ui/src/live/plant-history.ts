import type { PlantStats } from '../api/types';

/** One `plant` event as the page received it. */
export interface PlantSample {
  /** ms since the epoch, from the event's `at` */
  at: number;
  stats: PlantStats;
}

export type PlantController = PlantStats['controllers'][number];

/** Which controller was in charge: a fail-over changes the id or the epoch. */
export interface ActiveRef {
  id: string;
  epoch: number;
}

/** A change of the active controller seen between two `plant` events. */
export interface Failover {
  /** ms since the epoch: the event that showed the new active controller */
  at: number;
  from: ActiveRef;
  to: ActiveRef;
}

/** The `plant` events the page saw: samples for the trends (bounded), and the fail-overs seen. */
export interface PlantHistory {
  samples: PlantSample[];
  /** The last active controller seen, kept across events that name none (during a take-over). */
  lastActive: ActiveRef | null;
  /** oldest first, capped */
  failovers: Failover[];
}

export const EMPTY_PLANT_HISTORY: PlantHistory = { samples: [], lastActive: null, failovers: [] };

const MAX_FAILOVERS = 50;

/** The controller in charge: the one marked active (the highest epoch if more than one claim it). */
export function activeController(controllers: readonly PlantController[]): PlantController | null {
  let best: PlantController | null = null;
  for (const c of controllers) {
    if (c.role === 'active' && (!best || c.epoch > best.epoch)) best = c;
  }
  return best;
}

export function sameActive(a: ActiveRef, b: ActiveRef): boolean {
  return a.id === b.id && a.epoch === b.epoch;
}

/** Adds one event: samples older than keepMs before it (or not after the last one) are dropped. */
export function addPlantStats(history: PlantHistory, at: number, stats: PlantStats, keepMs: number): PlantHistory {
  const samples = [...history.samples.filter((s) => s.at >= at - keepMs && s.at < at), { at, stats }];
  const active = activeController(stats.controllers);
  if (!active) return { ...history, samples };
  const to: ActiveRef = { id: active.id, epoch: active.epoch };
  const from = history.lastActive;
  const failovers = from && !sameActive(from, to) ? [...history.failovers, { at, from, to }].slice(-MAX_FAILOVERS) : history.failovers;
  return { samples, lastActive: to, failovers };
}
