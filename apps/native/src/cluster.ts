import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.js';
import { ServiceProcess } from './service-process.js';

export { ServiceProcess } from './service-process.js';

export type CoreService = 'kvstore' | 'db' | 'storage' | 'master';
const CORE_SERVICES: CoreService[] = ['kvstore', 'db', 'storage', 'master'];

export interface NativeClusterOptions {
  /** Directory for the db's and storage's data (`<dataDir>/db`, `<dataDir>/storage`). */
  dataDir: string;
  /** Number of workers started with the cluster (default 2); more can be added later. */
  workers?: number;
  /**
   * kvstore gets basePort, db +1, storage +2, master +3, worker N +3+N.
   * Omitted: every service gets a free port, so clusters can run side by side.
   */
  basePort?: number;
  /** Lease length for db and workers (default 30 s). */
  leaseSec?: number;
  /** Core services to start (default all four); tests of one service start fewer. */
  services?: CoreService[];
  /** Extra environment for every service. */
  env?: Record<string, string>;
  /** Extra environment per core service. */
  serviceEnv?: Partial<Record<CoreService, Record<string, string>>>;
  /** Extra environment for the workers started with the cluster. */
  workerEnv?: Record<string, string>;
  /** Echo every service's output to stdout, prefixed with its name (default false). */
  echo?: boolean;
}

export interface AddWorkerOptions {
  /** Worker id and process name (default `w<N>`). */
  id?: string;
  env?: Record<string, string>;
}

export interface NativeCluster {
  readonly dataDir: string;
  /** Base URLs (http://127.0.0.1:port) of the core services that were started. */
  readonly urls: Partial<Record<CoreService, string>> & { kvstore: string };
  /** Looks a service up by name (`kvstore`, `db`, `storage`, `master`, `w1`, ...). */
  service(name: string): ServiceProcess;
  services(): ServiceProcess[];
  workers(): ServiceProcess[];
  addWorker(options?: AddWorkerOptions): Promise<ServiceProcess>;
  /** Sends a signal (default SIGKILL) and waits until the process is gone. */
  kill(name: string, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a stopped or killed service again with the same port and environment. */
  restart(name: string): Promise<void>;
  /** Stops everything: workers first, the registry last (SIGTERM, SIGKILL after 5 s). */
  stop(): Promise<void>;
}

const appsDir = fileURLToPath(new URL('../../', import.meta.url));

function entryOf(app: string): string {
  const manifest = JSON.parse(readFileSync(join(appsDir, app, 'package.json'), 'utf8')) as { main?: string };
  return join(appsDir, app, manifest.main ?? 'dist/main.js');
}

/** Starts the demo services as local processes on 127.0.0.1 and waits until all are healthy. */
export async function startNativeCluster(options: NativeClusterOptions): Promise<NativeCluster> {
  const wanted = options.services ?? CORE_SERVICES;
  const leaseSec = String(options.leaseSec ?? 30);
  const echo = options.echo ?? false;
  const processes = new Map<string, ServiceProcess>();
  let workerCount = 0;

  const portFor = async (offset: number): Promise<number> =>
    options.basePort === undefined ? freePort() : options.basePort + offset;

  const kvstorePort = await portFor(0);
  const kvstore = `127.0.0.1:${kvstorePort}`;
  const common = (port: number): Record<string, string> => ({
    HOST: '127.0.0.1',
    KVSTORE: kvstore,
    ADVERTISE: `127.0.0.1:${port}`,
    LEASE_SEC: leaseSec,
    EXIT_WITH_PARENT: '1',
    ...options.env,
  });

  const create = (name: string, app: string, port: number, env: Record<string, string>): ServiceProcess => {
    const service = new ServiceProcess({ name, entry: entryOf(app), port, env: { ...common(port), ...env }, echo });
    processes.set(name, service);
    return service;
  };

  const startAll = async (services: ServiceProcess[]): Promise<void> => {
    for (const service of services) service.start();
    await Promise.all(services.map((service) => service.waitHealthy()));
  };

  const cluster: NativeCluster = {
    dataDir: options.dataDir,
    urls: { kvstore: `http://${kvstore}` },
    service(name) {
      const service = processes.get(name);
      if (!service) throw new Error(`no service named ${name}`);
      return service;
    },
    services: () => [...processes.values()],
    workers: () => [...processes.values()].filter((service) => service.spec.entry === entryOf('worker')),
    async addWorker(workerOptions = {}) {
      workerCount++;
      const id = workerOptions.id ?? `w${workerCount}`;
      const port = await portFor(3 + workerCount);
      const worker = create(id, 'worker', port, { WORKER_ID: id, ...options.workerEnv, ...workerOptions.env });
      await startAll([worker]);
      return worker;
    },
    async kill(name, signal = 'SIGKILL') {
      await cluster.service(name).kill(signal);
    },
    async restart(name) {
      await startAll([cluster.service(name)]);
    },
    async stop() {
      await Promise.all(cluster.workers().map((worker) => worker.stop()));
      for (const name of ['master', 'storage', 'db', 'kvstore']) await processes.get(name)?.stop();
    },
  };

  try {
    if (wanted.includes('kvstore')) {
      await startAll([create('kvstore', 'kvstore', kvstorePort, {})]);
    }
    const tier: ServiceProcess[] = [];
    if (wanted.includes('db')) {
      const port = await portFor(1);
      tier.push(create('db', 'db', port, { DATA_DIR: join(options.dataDir, 'db'), ...options.serviceEnv?.db }));
      cluster.urls.db = `http://127.0.0.1:${port}`;
    }
    if (wanted.includes('storage')) {
      const port = await portFor(2);
      tier.push(
        create('storage', 'storage', port, { DATA_DIR: join(options.dataDir, 'storage'), ...options.serviceEnv?.storage }),
      );
      cluster.urls.storage = `http://127.0.0.1:${port}`;
    }
    if (wanted.includes('master')) {
      const port = await portFor(3);
      tier.push(create('master', 'master', port, { ...options.serviceEnv?.master }));
      cluster.urls.master = `http://127.0.0.1:${port}`;
    }
    await startAll(tier);
    const workers = options.workers ?? 2;
    await Promise.all(Array.from({ length: workers }, () => cluster.addWorker()));
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
