import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { createApi } from '../api/server.js';
import { UigniterError } from '../core/errors.js';
import { createCore, type Core } from '../core/core.js';
import { ImageService } from '../core/image-service.js';
import type { FaultHook } from '../core/supervision/fleet.js';
import { isActive, transition } from '../core/vm-state.js';
import { VolumeService } from '../core/volume-service.js';
import { QemuVmm } from '../drivers/qemu/qemu-vmm.js';
import { HttpServiceGateway } from '../gateway/service-gateway.js';
import { DriverRegistry } from './driver-registry.js';
import { ImageStore } from '../images/image-store.js';
import { HostNetwork } from '../network/host-network.js';
import { SqliteStore } from '../state/sqlite-store.js';
import { packageRoot, packageVersion } from '../util/package-root.js';
import { useCommandHelper } from '../util/command-helper.js';
import { Paths } from '../util/paths.js';
import { processAlive as alive } from '../util/process.js';
import { Ext4Volumes } from '../volumes/ext4-volumes.js';
import { checkConfig, type DaemonConfig } from './daemon-config.js';

export interface Daemon {
  app: FastifyInstance;
  core: Core;
  network: HostNetwork;
  store: SqliteStore;
  /** Where it listens, e.g. http://127.0.0.1:6666. */
  url: string;
  /** The dashboard, e.g. http://127.0.0.1:6680/ui/ (null: no --ui-port). */
  uiUrl: string | null;
  close(opts?: { stopVms?: boolean }): Promise<void>;
}

/** One daemon per state directory: two would fight over taps, leases and VMs. */
async function claimHome(paths: Paths): Promise<string> {
  const pidFile = join(paths.home, 'daemon.pid');
  const holder = Number(await readFile(pidFile, 'utf8').catch(() => '0'));
  if (holder > 0 && holder !== process.pid && alive(holder)) {
    throw new UigniterError('conflict', `another uigniter daemon (pid ${holder}) uses ${paths.home}`);
  }
  await writeFile(pidFile, String(process.pid));
  return pidFile;
}

/** What a test may hand the composition root besides the configuration. */
export interface DaemonHooks {
  logger?: Logger;
  /** Failure injection: called after every plan step; throwing fails that step. */
  faults?: FaultHook;
}

/** Wires the adapters to the core and the core to the API, repairs state, and listens. */
export async function startDaemon(cfg: DaemonConfig, hooks: DaemonHooks = {}): Promise<Daemon> {
  const logger = hooks.logger;
  checkConfig(cfg);
  const log = logger ?? pino({ level: cfg.logLevel, base: { pid: process.pid } });
  const paths = new Paths(cfg.home, cfg.cache);
  for (const d of [paths.home, paths.vms, paths.images, paths.layers, paths.volumes, paths.snapshots]) await mkdir(d, { recursive: true });
  const pidFile = await claimHome(paths);
  const store = new SqliteStore(paths.stateDb);
  const say = (msg: string, fields?: Record<string, unknown>): void => log.info(fields ?? {}, msg);
  const network = new HostNetwork(cfg.network, store, (m) => log.warn(m));
  // Host commands (ip, nft, bridge) spawn from a small helper, not from the daemon's heap.
  const releaseCommandHelper = useCommandHelper();
  const cleanups: (() => Promise<void>)[] = [];
  try {
    await network.start();
    cleanups.push(() => network.stop());
    const drivers = DriverRegistry.builtIn({ log: say, memDir: paths.memory, confine: cfg.confine });
    const images = new ImageStore(paths);
    const disks = new Ext4Volumes(paths.volumes);
    const core = createCore(
      {
      store,
      images,
      drivers,
      network,
      volumes: disks,
      clock: { now: () => new Date() },
      readyTimeoutMs: cfg.readyTimeoutMs,
      log: say,
      vmsDir: paths.vms,
      snapshotsDir: paths.snapshots,
      templates: cfg.templates,
      limits: cfg.limits,
      ...(hooks.faults ? { faults: hooks.faults } : {}),
      },
      (source) => new HttpServiceGateway(source),
    );
    core.records.on('transition', (vm, from) => log.info({ vm: vm.name, id: vm.id, from, to: vm.state, error: vm.error ?? undefined }, 'vm state'));
    const report = await core.reconciler.reconcile();
    log.info(report, 'reconciled state with running VMs');
    core.usage.start();
    core.codeCacheWatch.start();
    core.pools.start();
    await core.services.start();
    let uiUrl: string | null = null;
    const { app } = await createApi({
      uiRoot: join(packageRoot(), 'dist', 'ui'),
      uiUrl: () => uiUrl,
      core,
      images: new ImageService(images, store, paths.vms, core.snapshots),
      volumes: new VolumeService(store, disks),
      version: packageVersion(),
      token: cfg.token,
      logger: log,
    });
    await app.listen({ host: cfg.host, port: cfg.port });
    const addr = app.server.address();
    const url = typeof addr === 'object' && addr ? `http://${cfg.host}:${addr.port}` : `http://${cfg.host}:${cfg.port}`;
    if (cfg.uiPort !== null) {
      // The dashboard's listener: the same router (page and API), on a port browsers accept.
      const server = await listenAlso(app, { host: cfg.host, port: cfg.uiPort }).catch((e: NodeJS.ErrnoException) => {
        throw e.code === 'EADDRINUSE' ? new UigniterError('conflict', `the dashboard port ${cfg.host}:${cfg.uiPort} is in use: pass --ui-port <port> (0: any free port) or --no-ui`) : e;
      });
      const a = server.address();
      uiUrl = `http://${cfg.host}:${typeof a === 'object' && a ? a.port : cfg.uiPort}/ui/`;
      cleanups.push(() => closeServer(server));
    }
    if (cfg.socket) {
      // A listener on the unix socket, handing requests to the same Fastify router.
      await rm(cfg.socket, { force: true });
      const server = await listenAlso(app, cfg.socket);
      cleanups.push(async () => {
        await closeServer(server);
        await rm(cfg.socket!, { force: true });
      });
    }
    log.info({ url, ui: uiUrl, socket: cfg.socket, netns: network.netns, subnet: cfg.network.subnet }, 'uigniter daemon listening');
    let closed = false;
    return {
      app,
      core,
      network,
      store,
      url,
      uiUrl,
      async close(opts = {}) {
        if (closed) return;
        closed = true;
        await app.close();
        await core.usage.stop();
        await core.codeCacheWatch.stop();
        core.pools.close();
        await core.services.close();
        const stopVms = opts.stopVms ?? cfg.stopVmsOnExit;
        await core.vms.shutdown(stopVms);
        for (const c of cleanups.reverse()) await c().catch(() => undefined);
        // Nothing runs any more: take the VM network down with us. (Left up otherwise,
        // for the VMs that keep running and the daemon that will adopt them.)
        if (stopVms) {
          await network.namespace.teardown().catch((e: unknown) => log.warn({ err: e }, 'network teardown failed'));
          // Every VM is gone, and with it its RAM file: the directory goes too.
          await rm(paths.memory, { recursive: true, force: true });
        }
        store.close();
        releaseCommandHelper();
        await rm(pidFile, { force: true });
      },
    };
  } catch (e) {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    releaseCommandHelper();
    store.close();
    await rm(pidFile, { force: true });
    throw e;
  }
}

/** Another listener (a TCP port or a unix socket) handing every request to the app's router. */
async function listenAlso(app: FastifyInstance, where: string | { host: string; port: number }): Promise<Server> {
  const server = createServer((req, res) => app.routing(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (typeof where === 'string') server.listen(where, () => resolve());
    else server.listen(where.port, where.host, () => resolve());
  });
  return server;
}

async function closeServer(server: Server): Promise<void> {
  server.closeIdleConnections();
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    // A connection still busy after the app closed (a client reading slowly) is not waited for.
    setTimeout(() => server.closeAllConnections(), 2000).unref();
  });
}

/**
 * `uigniter daemon --cleanup`: removes what a daemon created on the host (its VMs'
 * processes, the network namespace with bridge, taps and firewall, the veth pair and
 * route, sockets and config drives) and marks its VMs stopped. Images, volumes and the
 * state file stay.
 */
export async function cleanupHost(cfg: DaemonConfig, log: (m: string) => void): Promise<void> {
  const paths = new Paths(cfg.home, cfg.cache);
  const pidFile = join(paths.home, 'daemon.pid');
  const holder = Number(await readFile(pidFile, 'utf8').catch(() => '0'));
  if (holder > 0 && alive(holder)) throw new UigniterError('conflict', `the daemon (pid ${holder}) is running: stop it first`);
  const vmm = new QemuVmm({ memDir: paths.memory });
  for (const line of await vmm.removeOrphans(paths.vms, new Set())) log(line);
  await rm(paths.memory, { recursive: true, force: true });
  await mkdir(paths.home, { recursive: true });
  const store = new SqliteStore(paths.stateDb);
  try {
    for (const vm of store.listVms()) {
      if (isActive(vm.state) || vm.state === 'creating') {
        store.updateVm(transition(vm, vm.state === 'creating' ? 'failed' : 'stopped', new Date(), { pid: null, tap: null }));
      }
      for (const f of ['qmp.sock', 'config.img', 'qemu.pid']) await rm(join(paths.vmDir(vm.id), f), { force: true });
    }
  } finally {
    store.close();
  }
  const network = new HostNetwork(cfg.network, { leaseFor: () => null, listLeases: () => [], takeLease: () => null, lastLeasedIp: () => null, releaseLease: () => undefined });
  await network.namespace.teardown();
  log(`removed network namespace ${cfg.network.netns} and veth ${network.layout.hostVeth}`);
  await rm(pidFile, { force: true });
}

/**
 * The failure-injection hook of the e2e tests, which run the daemon as its own process:
 * UIGNITER_FAIL_AFTER_STEP=<step> fails every plan right after that step ran;
 * UIGNITER_CRASH_AFTER_STEP=<step> kills the daemon (SIGKILL, no cleanup) right after it,
 * so a test interrupts a create at a known point instead of after a guessed delay (a
 * delete's points are `forget-record` and `forget-lease`, see Fleet.forget). Not a
 * daemon option: nothing but a test sets them.
 */
export function faultsFromEnv(env: NodeJS.ProcessEnv): FaultHook | undefined {
  const fail = env.UIGNITER_FAIL_AFTER_STEP;
  const crash = env.UIGNITER_CRASH_AFTER_STEP;
  if (!fail && !crash) return undefined;
  return (name) => {
    if (name === crash) process.kill(process.pid, 'SIGKILL');
    if (name === fail) throw new UigniterError('internal', `injected failure after step ${name}`);
  };
}
