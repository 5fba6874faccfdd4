import { isActuator, isSensorName, SETPOINT_RANGE, type Actuator, type LoopName, type SensorName } from './process-limits.js';

/**
 * Every MQTT payload is JSON. Each parser returns either the typed message
 * or a reason a subscriber logs before dropping the message (nothing changes).
 */
export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

/** The plant's process values: its sensors (levels in m, temperature in °C) and its actuators. */
export interface PlantValues {
  level1: number;
  level2: number;
  temp: number;
  /** Actuator positions the plant reports, 0..1. */
  inflow1: number;
  inflow2: number;
  heater: number;
}

/** The process values of one plant sample, as its Modbus registers hold them. */
export interface PlantSample extends PlantValues {
  /** The plant's sample sequence number (counts control periods). */
  seq: number;
  /** When the plant took the sample, in ms on the plant's own clock. */
  sampleTime: number;
}

/** One plant sample as published by the I/O gateway on plant/readings. */
export interface Reading extends PlantSample {
  /** Gateway wall clock when published (ms since epoch), informative only. */
  publishedAt: number;
}

export const COMMAND_SOURCES = ['controller', 'alarm', 'operator'] as const;
export type CommandSource = (typeof COMMAND_SOURCES)[number];

/** A command for one actuator; `seq` is the reading it answers. */
export interface Command {
  value: number;
  seq: number;
  /** The controller's epoch (0 for alarm-handler and operator commands). */
  epoch: number;
  source: CommandSource;
  by: string;
  sentAt: number;
}

export interface SetpointChange {
  value: number;
  by?: string;
}

export interface Heartbeat {
  id: string;
  epoch: number;
  at: number;
}

export type ActiveAnnouncement = Heartbeat;

export const ALARM_KINDS = ['high', 'high-high', 'frozen'] as const;
export type AlarmKind = (typeof ALARM_KINDS)[number];

export interface AlarmRaised {
  id: string;
  kind: AlarmKind;
  tag: SensorName;
  value: number;
  /** Reading sequence number that raised it. */
  seq: number;
  /** Raiser's wall clock (ms since epoch). */
  raisedAt: number;
}

export interface AlarmHandled {
  id: string;
  handledAt: number;
  action: string;
  by: string;
}

type Obj = Record<string, unknown>;

export function parseJsonObject(payload: Buffer | string): Parsed<Obj> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.toString());
  } catch {
    return { ok: false, reason: 'payload is not JSON' };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return { ok: false, reason: 'payload is not a JSON object' };
  }
  return { ok: true, value: parsed as Obj };
}

class Invalid extends Error {}

function num(o: Obj, field: string, min = -Infinity, max = Infinity): number {
  const v = o[field];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Invalid(`field "${field}" must be a finite number`);
  if (v < min || v > max) throw new Invalid(`field "${field}" = ${v} is out of range ${min}..${max}`);
  return v;
}

function int(o: Obj, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = num(o, field, min, max);
  if (!Number.isInteger(v)) throw new Invalid(`field "${field}" must be an integer`);
  return v;
}

function str(o: Obj, field: string, maxLength = 64): string {
  const v = o[field];
  if (typeof v !== 'string' || v.length === 0 || v.length > maxLength) {
    throw new Invalid(`field "${field}" must be a string of 1..${maxLength} characters`);
  }
  return v;
}

function oneOf<T extends string>(o: Obj, field: string, allowed: readonly T[]): T {
  const v = str(o, field);
  if (!(allowed as readonly string[]).includes(v)) throw new Invalid(`field "${field}" must be one of ${allowed.join(', ')}`);
  return v as T;
}

function parseWith<T>(payload: Buffer | string, build: (o: Obj) => T): Parsed<T> {
  const json = parseJsonObject(payload);
  if (!json.ok) return json;
  try {
    return { ok: true, value: build(json.value) };
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, reason: err.message };
    throw err;
  }
}

export function parseReading(payload: Buffer | string): Parsed<Reading> {
  return parseWith(payload, (o) => ({
    seq: int(o, 'seq'),
    sampleTime: num(o, 'sampleTime', 0),
    level1: num(o, 'level1', -10, 10),
    level2: num(o, 'level2', -10, 10),
    temp: num(o, 'temp', -50, 200),
    inflow1: num(o, 'inflow1', 0, 1),
    inflow2: num(o, 'inflow2', 0, 1),
    heater: num(o, 'heater', 0, 1),
    publishedAt: num(o, 'publishedAt', 0),
  }));
}

export function parseCommand(payload: Buffer | string): Parsed<Command> {
  return parseWith(payload, (o) => ({
    value: num(o, 'value', 0, 1),
    seq: int(o, 'seq', 0, 0xffffffff),
    epoch: int(o, 'epoch', 0, 0xffff),
    source: oneOf(o, 'source', COMMAND_SOURCES),
    by: str(o, 'by'),
    sentAt: num(o, 'sentAt', 0),
  }));
}

export function parseSetpoint(loop: LoopName, payload: Buffer | string): Parsed<SetpointChange> {
  const range = SETPOINT_RANGE[loop];
  return parseWith(payload, (o) => {
    const change: SetpointChange = { value: num(o, 'value', range.min, range.max) };
    if (o['by'] !== undefined) change.by = str(o, 'by');
    return change;
  });
}

export function parseHeartbeat(payload: Buffer | string): Parsed<Heartbeat> {
  return parseWith(payload, (o) => ({ id: str(o, 'id'), epoch: int(o, 'epoch', 1, 0xffff), at: num(o, 'at', 0) }));
}

export function parseAlarmRaised(payload: Buffer | string): Parsed<AlarmRaised> {
  return parseWith(payload, (o) => {
    const tag = str(o, 'tag');
    if (!isSensorName(tag)) throw new Invalid(`field "tag" must be a sensor name`);
    return {
      id: str(o, 'id', 128),
      kind: oneOf(o, 'kind', ALARM_KINDS),
      tag,
      value: num(o, 'value'),
      seq: int(o, 'seq', 0, 0xffffffff),
      raisedAt: num(o, 'raisedAt', 0),
    };
  });
}

export function parseAlarmHandled(payload: Buffer | string): Parsed<AlarmHandled> {
  return parseWith(payload, (o) => ({
    id: str(o, 'id', 128),
    handledAt: num(o, 'handledAt', 0),
    action: str(o, 'action', 256),
    by: str(o, 'by'),
  }));
}

export function isCommandActuator(value: string): value is Actuator {
  return isActuator(value);
}
