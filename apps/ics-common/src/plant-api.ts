import type { PlantValues } from './messages.js';
import type { RegisterCommand } from './modbus-map.js';
import type { SensorName } from './process-limits.js';

/**
 * Shapes of the plant's HTTP API (GET /trace, GET /latency): the plant
 * serves them and the scenario engine reads them.
 */

/**
 * One step of the plant model: the sensor values as the plant's instruments
 * report them (noise, faults) and the actual actuator positions.
 */
export interface PlantStep extends PlantValues {
  seq: number;
  /** The true process values, for assertions. */
  truth: Record<SensorName, number>;
  /** Names of the faults active during this step. */
  faults: string[];
}

/** A command as the plant applied it. */
export interface AppliedCommand extends RegisterCommand {
  /** Plant time (ms) the command was received over Modbus. */
  t: number;
  latencyMs?: number;
}

/** One entry of the plant's trajectory (GET /trace). */
export interface TraceEntry extends PlantStep {
  /** Plant time (ms since the plant started) of the sample. */
  t: number;
  /** Commands received since the previous sample (applied from this step on). */
  commands: AppliedCommand[];
  /** Fault injections received since the previous sample. */
  injected: string[];
}

/** Loop latency and deadline misses as the plant measures them (GET /latency). */
export interface LatencySummary {
  deadlineMs: number;
  count: number;
  p50: number;
  p99: number;
  max: number;
  deadlineMisses: number;
  late: number;
  noCommand: number;
}
