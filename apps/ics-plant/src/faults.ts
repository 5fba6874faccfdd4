import { invalidField, missingField } from '@uigniter-demo/common/http-error';
import { isActuator, isSensorName, type Actuator, type SensorName } from '@uigniter-demo/ics-common/process-limits';

/** Disturbances and faults the plant accepts (setpoint changes are the controller's business). */
export type Fault =
  | { name: 'outflow-disturbance'; tank: 1 | 2; factor: number; durationMs?: number }
  | { name: 'stuck-valve'; valve: Actuator; position?: number; durationMs?: number }
  | { name: 'frozen-sensor'; sensor: SensorName; durationMs?: number }
  | { name: 'sensor-spike'; sensor: SensorName; delta: number; durationMs?: number }
  | { name: 'clear' };

export const FAULT_NAMES = ['outflow-disturbance', 'stuck-valve', 'frozen-sensor', 'sensor-spike', 'clear'] as const;

type Body = Record<string, unknown>;

function finite(body: Body, field: string, min: number, max: number, optional = false): number | undefined {
  const value = body[field];
  if (value === undefined && optional) return undefined;
  if (value === undefined) throw missingField(field);
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw invalidField(field, `field "${field}" must be a number in ${min}..${max}`);
  }
  return value;
}

function durationOf(body: Body): { durationMs?: number } {
  const durationMs = finite(body, 'durationMs', 1, 3_600_000, true);
  return durationMs === undefined ? {} : { durationMs };
}

function sensorOf(body: Body): SensorName {
  const sensor = body['sensor'];
  if (sensor === undefined) throw missingField('sensor');
  if (typeof sensor !== 'string' || !isSensorName(sensor)) {
    throw invalidField('sensor', 'field "sensor" must be level1, level2 or temp');
  }
  return sensor;
}

/** Validates a POST /faults body: `{name, ...parameters}`; a bad one is a 400 naming the field. */
export function parseFault(body: Body): Fault {
  const name = body['name'];
  if (name === undefined) throw missingField('name');
  switch (name) {
    case 'outflow-disturbance': {
      const tank = body['tank'];
      if (tank === undefined) throw missingField('tank');
      if (tank !== 1 && tank !== 2) throw invalidField('tank', 'field "tank" must be 1 or 2');
      return { name: 'outflow-disturbance', tank, factor: finite(body, 'factor', -1, 5) as number, ...durationOf(body) };
    }
    case 'stuck-valve': {
      const valve = body['valve'];
      if (valve === undefined) throw missingField('valve');
      if (typeof valve !== 'string' || !isActuator(valve)) {
        throw invalidField('valve', 'field "valve" must be inflow1, inflow2 or heater');
      }
      const position = finite(body, 'position', 0, 1, true);
      return { name: 'stuck-valve', valve, ...(position === undefined ? {} : { position }), ...durationOf(body) };
    }
    case 'frozen-sensor':
      return { name: 'frozen-sensor', sensor: sensorOf(body), ...durationOf(body) };
    case 'sensor-spike':
      return { name: 'sensor-spike', sensor: sensorOf(body), delta: finite(body, 'delta', -100, 100) as number, ...durationOf(body) };
    case 'clear':
      return { name: 'clear' };
    default:
      throw invalidField('name', `field "name" must be one of ${FAULT_NAMES.join(', ')}`);
  }
}
