import { join } from 'node:path';
import type { ServiceProcess } from '@uigniter-demo/native';
import type { ScenarioTarget } from '@uigniter-demo/ics-scenarios';
import { AlarmScaler } from './alarm-scaler.js';
import { freePort } from './free-port.js';
import { icsService, type IcsApp } from './ics-service.js';

export type IcsServiceName = 'broker' | 'plant' | 'historian' | 'iogateway' | 'controller-a' | 'controller-b' | 'alarm';

export interface IcsClusterOptions {
  /** Parent of every service's DATA_DIR (`<dataDir>/<service>`). */
  dataDir: string;
  /** Plant seed (default 42). */
  seed?: number;
  /** Environment for every service. */
  env?: Record<string, string>;
  /** Environment per service. */
  serviceEnv?: Partial<Record<IcsServiceName, Record<string, string>>>;
  /** Start the alarm handler on demand from the historian's pending count (default true). */
  autoscaleAlarm?: boolean;
  /** Echo every service's output, prefixed with its name. */
  echo?: boolean;
}

export interface IcsCluster {
  readonly dataDir: string;
  readonly urls: Record<IcsServiceName, string>;
  /** host:port of the broker's MQTT listener. */
  readonly broker: string;
  /** host:port of the plant's Modbus listener. */
  readonly modbus: string;
  readonly scaler: AlarmScaler | undefined;
  service(name: IcsServiceName): ServiceProcess;
  services(): ServiceProcess[];
  kill(name: IcsServiceName, signal?: NodeJS.Signals): Promise<void>;
  restart(name: IcsServiceName): Promise<void>;
  /** The deployment as the scenario engine sees it (controllers are `a` and `b`). */
  scenarioTarget(timeFactor?: number, log?: (line: string) => void): ScenarioTarget;
  stop(): Promise<void>;
  /** The last lines of every service, for failure messages. */
  logs(lines?: number): string;
}

/** Stop order: on-demand handler and controllers first, the broker last. */
const STOP_ORDER: IcsServiceName[] = ['alarm', 'controller-a', 'controller-b', 'iogateway', 'historian', 'plant', 'broker'];

/**
 * Starts the ICS services as local processes on 127.0.0.1 with ports from
 * the OS: broker, plant, historian, I/O gateway and two controllers
 * (a: ROLE_PRIORITY 1, b: 2). The alarm handler is not started: the scaler
 * starts it when the historian reports pending alarms, and it asks the
 * historian for them once subscribed.
 */
export async function startIcsCluster(options: IcsClusterOptions): Promise<IcsCluster> {
  const echo = options.echo ?? false;
  const processes = new Map<IcsServiceName, ServiceProcess>();
  const ports = {
    broker: await freePort(),
    mqtt: await freePort(),
    plant: await freePort(),
    modbus: await freePort(),
    historian: await freePort(),
    iogateway: await freePort(),
    'controller-a': await freePort(),
    'controller-b': await freePort(),
    alarm: await freePort(),
  };
  const broker = `127.0.0.1:${ports.mqtt}`;
  const modbus = `127.0.0.1:${ports.modbus}`;
  const historian = `127.0.0.1:${ports.historian}`;
  const dataOf = (name: string): string => join(options.dataDir, name);

  const create = (name: IcsServiceName, app: IcsApp, env: Record<string, string>): ServiceProcess => {
    const service = icsService(name, app, ports[name], { BROKER: broker, ...options.env, ...env, ...options.serviceEnv?.[name] }, echo);
    processes.set(name, service);
    return service;
  };
  const startAll = async (services: ServiceProcess[]): Promise<void> => {
    for (const service of services) service.start();
    await Promise.all(services.map((service) => service.waitHealthy()));
  };

  create('broker', 'ics-broker', { MQTT_PORT: String(ports.mqtt), DATA_DIR: dataOf('broker') });
  create('plant', 'ics-plant', { MODBUS_PORT: String(ports.modbus), SEED: String(options.seed ?? 42) });
  create('historian', 'ics-historian', { DATA_DIR: dataOf('historian') });
  create('iogateway', 'ics-iogateway', { PLANT: modbus });
  create('controller-a', 'ics-controller', { CONTROLLER_ID: 'a', ROLE_PRIORITY: '1', DATA_DIR: dataOf('controller-a') });
  create('controller-b', 'ics-controller', { CONTROLLER_ID: 'b', ROLE_PRIORITY: '2', DATA_DIR: dataOf('controller-b') });
  const alarm = create('alarm', 'ics-alarm', { HISTORIAN: historian });
  let scaler: AlarmScaler | undefined;

  const urls = Object.fromEntries(
    (['broker', 'plant', 'historian', 'iogateway', 'controller-a', 'controller-b', 'alarm'] as const).map((name) => [name, `http://127.0.0.1:${ports[name]}`]),
  ) as Record<IcsServiceName, string>;

  const cluster: IcsCluster = {
    dataDir: options.dataDir,
    urls,
    broker,
    modbus,
    get scaler() {
      return scaler;
    },
    service(name) {
      const service = processes.get(name);
      if (!service) throw new Error(`no service named ${name}`);
      return service;
    },
    services: () => [...processes.values()],
    async kill(name, signal = 'SIGKILL') {
      await cluster.service(name).kill(signal);
    },
    async restart(name) {
      await startAll([cluster.service(name)]);
    },
    scenarioTarget(timeFactor = 1, log) {
      const controllerName = (name: string): IcsServiceName => {
        if (name !== 'a' && name !== 'b') throw new Error(`no controller ${name}`);
        return `controller-${name}`;
      };
      const target: ScenarioTarget = {
        plantUrl: urls.plant,
        historianUrl: urls.historian,
        gatewayUrl: urls.iogateway,
        controllerUrls: { a: urls['controller-a'], b: urls['controller-b'] },
        broker,
        timeFactor,
        killController: (name) => cluster.kill(controllerName(name)),
        restartController: (name) => cluster.restart(controllerName(name)),
        async restartBroker(whileDown) {
          await cluster.kill('broker');
          await whileDown();
          await cluster.restart('broker');
        },
        alarmHandlerRunning: async () => alarm.running,
      };
      if (log) target.log = log;
      return target;
    },
    async stop() {
      scaler?.stop();
      for (const name of STOP_ORDER) await processes.get(name)?.stop();
    },
    logs(lines = 40) {
      return [...processes.values()].map((s) => s.tail(lines)).join('\n');
    },
  };

  try {
    await startAll([cluster.service('broker'), cluster.service('plant')]);
    await startAll([cluster.service('historian'), cluster.service('iogateway')]);
    await startAll([cluster.service('controller-a'), cluster.service('controller-b')]);
    if (options.autoscaleAlarm ?? true) {
      scaler = new AlarmScaler(alarm, `${urls.historian}/alarms/pending`);
      scaler.start();
    }
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

