/** Names and limits of the process, shared by every ICS service. */

export const ACTUATORS = ['inflow1', 'inflow2', 'heater'] as const;
export type Actuator = (typeof ACTUATORS)[number];

export const LOOPS = ['level1', 'level2', 'temp'] as const;
export type LoopName = (typeof LOOPS)[number];

export const SENSORS = ['level1', 'level2', 'temp'] as const;
export type SensorName = (typeof SENSORS)[number];

/** Which actuator each control loop drives. */
export const LOOP_ACTUATOR: Record<LoopName, Actuator> = { level1: 'inflow1', level2: 'inflow2', temp: 'heater' };

/** Tank level alarm limits in metres (tanks are TANK_HEIGHT_M tall). */
export const LEVEL_LIMITS = { low: 0.2, high: 1.6, highHigh: 1.8 } as const;
export const TANK_HEIGHT_M = 2.5;
/** Temperature alarm limits in °C. */
export const TEMP_LIMITS = { low: 15, high: 75, highHigh: 85 } as const;

/** Accepted setpoint range per loop: a level setpoint must stay between the low and high alarms. */
export const SETPOINT_RANGE: Record<LoopName, { min: number; max: number }> = {
  level1: { min: 0.3, max: 1.5 },
  level2: { min: 0.3, max: 1.5 },
  temp: { min: 25, max: 70 },
};

export const DEFAULT_SETPOINTS: Record<LoopName, number> = { level1: 1.0, level2: 1.0, temp: 45 };

export function isActuator(value: string): value is Actuator {
  return (ACTUATORS as readonly string[]).includes(value);
}

export function isLoopName(value: string): value is LoopName {
  return (LOOPS as readonly string[]).includes(value);
}

export function isSensorName(value: string): value is SensorName {
  return (SENSORS as readonly string[]).includes(value);
}
