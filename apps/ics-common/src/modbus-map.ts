import { ACTUATORS, type Actuator } from './process-limits.js';
import type { CommandSource, PlantSample } from './messages.js';

/**
 * The plant's Modbus holding registers (unit id 1). Sensors are read as one
 * block with FC3; a command is one FC16 write of its whole block, so the
 * value and the sequence number of the reading it answers arrive together.
 */
export const UNIT_ID = 1;

/** Readings block: 0..READINGS_LENGTH-1. */
export const READINGS_START = 0;
export const READINGS_LENGTH = 10;
/** Command blocks: COMMANDS_START + index * COMMAND_BLOCK, each [value‰, seqHi, seqLo, epoch, source]. */
export const COMMANDS_START = 100;
export const COMMAND_BLOCK = 5;

export type RegisterReading = PlantSample;

const SOURCE_CODES: CommandSource[] = ['controller', 'alarm', 'operator'];

function u16(value: number): number {
  return Math.max(0, Math.min(0xffff, Math.round(value)));
}

/** Levels in mm, temperature in 0.1 °C, positions in ‰; seq and sample time as 32-bit pairs. */
export function encodeReadings(r: RegisterReading): number[] {
  const seq = r.seq >>> 0;
  const time = Math.round(r.sampleTime) >>> 0;
  return [
    seq >>> 16,
    seq & 0xffff,
    time >>> 16,
    time & 0xffff,
    u16(r.level1 * 1000),
    u16(r.level2 * 1000),
    u16(r.temp * 10),
    u16(r.inflow1 * 1000),
    u16(r.inflow2 * 1000),
    u16(r.heater * 1000),
  ];
}

export function decodeReadings(regs: readonly number[]): RegisterReading {
  if (regs.length < READINGS_LENGTH) throw new Error(`expected ${READINGS_LENGTH} registers, got ${regs.length}`);
  const r = (i: number): number => regs[i] as number;
  return {
    seq: r(0) * 0x10000 + r(1),
    sampleTime: r(2) * 0x10000 + r(3),
    level1: r(4) / 1000,
    level2: r(5) / 1000,
    temp: r(6) / 10,
    inflow1: r(7) / 1000,
    inflow2: r(8) / 1000,
    heater: r(9) / 1000,
  };
}

export interface RegisterCommand {
  actuator: Actuator;
  value: number;
  seq: number;
  epoch: number;
  source: CommandSource;
}

export function commandAddress(actuator: Actuator): number {
  return COMMANDS_START + ACTUATORS.indexOf(actuator) * COMMAND_BLOCK;
}

export function encodeCommand(c: Omit<RegisterCommand, 'actuator'>): number[] {
  const seq = c.seq >>> 0;
  return [u16(c.value * 1000), seq >>> 16, seq & 0xffff, u16(c.epoch), SOURCE_CODES.indexOf(c.source)];
}

/** Decodes a full command block written at `address`; undefined when it is not exactly one block. */
export function decodeCommand(address: number, regs: readonly number[]): RegisterCommand | string {
  const offset = address - COMMANDS_START;
  const index = offset / COMMAND_BLOCK;
  const actuator = ACTUATORS[index];
  if (!Number.isInteger(index) || actuator === undefined) return `address ${address} is not a command block`;
  if (regs.length !== COMMAND_BLOCK) return `a command is ${COMMAND_BLOCK} registers, got ${regs.length}`;
  const r = (i: number): number => regs[i] as number;
  const source = SOURCE_CODES[r(4)];
  if (source === undefined) return `unknown command source code ${r(4)}`;
  if (r(0) > 1000) return `value ${r(0)}‰ is over 1000`;
  return { actuator, value: r(0) / 1000, seq: r(1) * 0x10000 + r(2), epoch: r(3), source };
}
