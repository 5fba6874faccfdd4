import type { PlantSample } from './plant-history';

/** The plant's trends as chart columns, derived from the `plant` samples (pure, for charts). */
export interface PlantSeries {
  /** seconds since the epoch (uPlot's time unit) */
  t: number[];
  level1: number[];
  level2: number[];
  /** null while no setpoints were known */
  level1Setpoint: (number | null)[];
  level2Setpoint: (number | null)[];
  levelHigh: number[];
  levelHighHigh: number[];
  temp: number[];
  tempSetpoint: (number | null)[];
}

export function plantSeries(samples: readonly PlantSample[]): PlantSeries {
  const out: PlantSeries = {
    t: [],
    level1: [],
    level2: [],
    level1Setpoint: [],
    level2Setpoint: [],
    levelHigh: [],
    levelHighHigh: [],
    temp: [],
    tempSetpoint: [],
  };
  for (const { at, stats } of samples) {
    const { plant, setpoints } = stats;
    out.t.push(at / 1000);
    out.level1.push(plant.levels.level1);
    out.level2.push(plant.levels.level2);
    out.level1Setpoint.push(setpoints?.level1 ?? null);
    out.level2Setpoint.push(setpoints?.level2 ?? null);
    out.levelHigh.push(plant.limits.level.high);
    out.levelHighHigh.push(plant.limits.level.highHigh);
    out.temp.push(plant.temp);
    out.tempSetpoint.push(setpoints?.temp ?? null);
  }
  return out;
}
