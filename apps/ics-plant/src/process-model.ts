import { ACTUATORS, TANK_HEIGHT_M, type Actuator, type SensorName } from '@uigniter-demo/ics-common/process-limits';
import type { PlantStep } from '@uigniter-demo/ics-common/plant-api';
import type { Fault } from './faults.js';
import { SeededRandom } from './seeded-random.js';

/**
 * Two tanks, each filled through an inflow valve and draining through an
 * outlet (Torricelli: q = k·√h), and a heated vessel (first-order lag to
 * ambient + gain·heater). Stepped with a fixed dt; sensor noise comes from a
 * seeded PRNG, so the same seed, commands and faults at the same steps give
 * exactly the same trajectory.
 */
export interface ModelParams {
  dtS: number;
  tankAreaM2: number;
  /** Inflow at a fully open valve (m³/s). */
  inflowMaxM3s: number;
  /** Outlet coefficient k in q = k·√h. */
  outflowK: number;
  tankHeightM: number;
  ambientC: number;
  /** Steady-state rise at full heater power (°C). */
  heaterGainC: number;
  tempTauS: number;
  /** Valve travel per second (0..1 range). */
  valveRatePerS: number;
  levelNoiseM: number;
  tempNoiseC: number;
}

export const DEFAULT_PARAMS: ModelParams = {
  dtS: 0.1,
  tankAreaM2: 1,
  inflowMaxM3s: 0.5,
  outflowK: 0.25,
  tankHeightM: TANK_HEIGHT_M,
  ambientC: 20,
  heaterGainC: 60,
  tempTauS: 6,
  valveRatePerS: 2,
  levelNoiseM: 0.002,
  tempNoiseC: 0.1,
};

export type InitialState = Record<SensorName, number>;

export const DEFAULT_INITIAL: InitialState = { level1: 0.6, level2: 0.8, temp: 25 };

/** What the model returns for each step. */
export type Sample = PlantStep;

interface ActiveFault {
  fault: Exclude<Fault, { name: 'clear' }>;
  untilStep: number;
}

export class ProcessModel {
  private readonly random: SeededRandom;
  private readonly params: ModelParams;
  private seq = 0;
  private level: [number, number];
  private temp: number;
  private readonly position: Record<Actuator, number> = { inflow1: 0, inflow2: 0, heater: 0 };
  private readonly commanded: Record<Actuator, number> = { inflow1: 0, inflow2: 0, heater: 0 };
  private faults: ActiveFault[] = [];
  private lastSensor: Record<SensorName, number>;

  constructor(seed: number, params: Partial<ModelParams> = {}, initial: InitialState = DEFAULT_INITIAL) {
    this.random = new SeededRandom(seed);
    this.params = { ...DEFAULT_PARAMS, ...params };
    this.level = [initial.level1, initial.level2];
    this.temp = initial.temp;
    this.lastSensor = { level1: initial.level1, level2: initial.level2, temp: initial.temp };
  }

  get step(): number {
    return this.seq;
  }

  get dtMs(): number {
    return this.params.dtS * 1000;
  }

  /** Sets an actuator's commanded position; it takes effect from the next step. */
  command(actuator: Actuator, value: number): void {
    this.commanded[actuator] = Math.min(1, Math.max(0, value));
  }

  /** Starts a fault at the next step (`clear` ends all). Durations are rounded to whole steps. */
  inject(fault: Fault): void {
    if (fault.name === 'clear') {
      this.faults = [];
      return;
    }
    const steps = fault.durationMs === undefined ? Number.POSITIVE_INFINITY : Math.max(1, Math.round(fault.durationMs / this.dtMs));
    const stored = { ...fault };
    // A valve stuck without a position stays where it is now.
    if (stored.name === 'stuck-valve' && stored.position === undefined) stored.position = this.position[stored.valve];
    this.faults.push({ fault: stored, untilStep: this.seq + steps });
  }

  activeFaults(): Fault[] {
    return this.faults.map((f) => f.fault);
  }

  /** Advances the process by dt and returns the new sample. */
  advance(): Sample {
    const p = this.params;
    this.seq++;
    this.faults = this.faults.filter((f) => f.untilStep >= this.seq);

    for (const actuator of ACTUATORS) {
      const stuck = this.faults.find((f) => f.fault.name === 'stuck-valve' && f.fault.valve === actuator);
      const target = stuck && stuck.fault.name === 'stuck-valve' ? (stuck.fault.position ?? this.position[actuator]) : this.commanded[actuator];
      const maxMove = p.valveRatePerS * p.dtS;
      const delta = Math.max(-maxMove, Math.min(maxMove, target - this.position[actuator]));
      this.position[actuator] += delta;
    }

    const valves: [number, number] = [this.position.inflow1, this.position.inflow2];
    for (const i of [0, 1] as const) {
      let factor = 1;
      for (const f of this.faults) {
        if (f.fault.name === 'outflow-disturbance' && f.fault.tank === i + 1) factor += f.fault.factor;
      }
      const outflow = Math.max(0, factor) * p.outflowK * Math.sqrt(Math.max(0, this.level[i]));
      const inflow = valves[i] * p.inflowMaxM3s;
      this.level[i] = Math.min(p.tankHeightM, Math.max(0, this.level[i] + ((inflow - outflow) / p.tankAreaM2) * p.dtS));
    }
    const target = p.ambientC + p.heaterGainC * this.position.heater;
    this.temp += ((target - this.temp) / p.tempTauS) * p.dtS;

    // Noise is drawn every step whatever the faults, so a fault does not
    // shift the random sequence of the steps after it.
    const noise = {
      level1: this.random.gaussian() * p.levelNoiseM,
      level2: this.random.gaussian() * p.levelNoiseM,
      temp: this.random.gaussian() * p.tempNoiseC,
    };
    const truth = { level1: this.level[0], level2: this.level[1], temp: this.temp };
    const sensor = {} as Record<SensorName, number>;
    for (const name of ['level1', 'level2', 'temp'] as const) {
      let value = truth[name] + noise[name];
      for (const f of this.faults) {
        if (f.fault.name === 'sensor-spike' && f.fault.sensor === name) value += f.fault.delta;
      }
      const frozen = this.faults.some((f) => f.fault.name === 'frozen-sensor' && f.fault.sensor === name);
      sensor[name] = frozen ? this.lastSensor[name] : Math.max(0, value);
    }
    this.lastSensor = sensor;
    return {
      seq: this.seq,
      ...sensor,
      inflow1: this.position.inflow1,
      inflow2: this.position.inflow2,
      heater: this.position.heater,
      truth,
      faults: this.faults.map((f) => f.fault.name),
    };
  }
}
