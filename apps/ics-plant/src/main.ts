import { envNumber, envString } from '@uigniter-demo/common/config';
import { closeServer, listen } from '@uigniter-demo/common/http-server';
import { log } from '@uigniter-demo/common/log';
import { onShutdown } from '@uigniter-demo/common/shutdown';
import { startModbusDevice } from './modbus-device.js';
import { PlantRuntime } from './plant-runtime.js';
import { plantRouter } from './routes.js';

const port = envNumber('PORT', 9100, 1, 65535);
const host = envString('HOST', '0.0.0.0');
const modbusPort = envNumber('MODBUS_PORT', 502, 1, 65535);
const seed = envNumber('SEED', 42, 0, 0xffffffff);
const periodMs = envNumber('CONTROL_PERIOD_MS', 100, 10, 10_000);
// 250 ms: 2.5 control periods. Natively a loop takes a few ms; under TCG
// emulation (no KVM on this machine) each of the four hops is much slower.
const deadlineMs = envNumber('DEADLINE_MS', 250, 1, 600_000);

const plant = new PlantRuntime({ seed, periodMs, deadlineMs });
const modbus = await startModbusDevice(plant, host, modbusPort);
plant.start();
const server = await listen(plantRouter(plant), port, host);
log(`plant listening on ${host}:${port} (HTTP), Modbus TCP on ${host}:${modbusPort}; seed ${seed}, period ${periodMs} ms, deadline ${deadlineMs} ms`);

onShutdown(async () => {
  plant.stop();
  await new Promise<void>((resolve) => modbus.close(() => resolve()));
  await closeServer(server);
});
