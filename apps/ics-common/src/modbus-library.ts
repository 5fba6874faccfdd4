import { createRequire } from 'node:module';
import type { ServerTCP as ServerTCPClass } from 'modbus-serial';
import type ModbusDefault from 'modbus-serial';

/*
 * modbus-serial is CommonJS (module.exports = the client class, with
 * ServerTCP attached); its typings declare an ES default export that
 * NodeNext resolution does not map onto that. Loading it with require
 * gives both classes with their declared types.
 */
/** The client class's instance type, as the typings' default export declares it. */
type ModbusRTU = InstanceType<typeof ModbusDefault.default>;
const require = createRequire(import.meta.url);
const library = require('modbus-serial') as { new (): ModbusRTU; ServerTCP: typeof ServerTCPClass };

export type ModbusClient = ModbusRTU;
export type ModbusServer = ServerTCPClass;
export const ModbusClientClass = library;
export const ModbusServerClass = library.ServerTCP;
