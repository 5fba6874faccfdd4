import { log } from '@uigniter-demo/common/log';
import { ModbusServerClass, type ModbusServer } from '@uigniter-demo/ics-common/modbus-library';
import { decodeCommand, READINGS_LENGTH, READINGS_START, UNIT_ID } from '@uigniter-demo/ics-common/modbus-map';
import type { PlantRuntime } from './plant-runtime.js';

/*
 * Library choice: modbus-serial (ServerTCP + client in one maintained,
 * typed package). Its service vector has getMultipleHoldingRegisters and
 * setRegisterArray, so a whole readings block is read and a whole command
 * block written in one call, atomically with respect to the plant loop.
 * jsmodbus would work too, but its server exposes raw register buffers and
 * events after the write, which makes validating a command block before it
 * takes effect clumsier.
 */

function modbusError(code: number, message: string): Error & { modbusErrorCode: number } {
  return Object.assign(new Error(message), { modbusErrorCode: code });
}

const ILLEGAL_ADDRESS = 0x02;
const ILLEGAL_VALUE = 0x03;

export function startModbusDevice(plant: PlantRuntime, host: string, port: number): Promise<ModbusServer> {
  const read = (addr: number, length: number): number[] => {
    if (addr < READINGS_START || addr + length > READINGS_START + READINGS_LENGTH) {
      throw modbusError(ILLEGAL_ADDRESS, `no readable registers at ${addr}..${addr + length - 1}`);
    }
    return plant.registers.slice(addr - READINGS_START, addr - READINGS_START + length);
  };
  const server = new ModbusServerClass(
    {
      getHoldingRegister: (addr: number) => read(addr, 1)[0] as number,
      getMultipleHoldingRegisters: (addr: number, length: number) => read(addr, length),
      getInputRegister: (addr: number) => read(addr, 1)[0] as number,
      getMultipleInputRegisters: (addr: number, length: number) => read(addr, length),
      setRegisterArray: (addr: number, values: number[]) => {
        const command = decodeCommand(addr, values);
        if (typeof command === 'string') {
          log(`rejected Modbus write at ${addr}: ${command}`);
          throw modbusError(ILLEGAL_VALUE, command);
        }
        plant.applyCommand(command);
      },
      setRegister: (addr: number) => {
        throw modbusError(ILLEGAL_ADDRESS, `single-register write at ${addr}: commands are whole blocks (FC16)`);
      },
    },
    { host, port, unitID: UNIT_ID },
  );
  server.on('socketError', (err: Error | null) => log(`modbus socket error: ${err?.message ?? 'unknown'}`));
  return new Promise((resolve, reject) => {
    server.on('initialized', () => resolve(server));
    server.on('serverError', (err: Error | null) => reject(err ?? new Error('modbus server error')));
  });
}
