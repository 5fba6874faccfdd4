import { Fleet, type FleetOptions } from './supervision/fleet.js';
import { Reconciler } from './reconcile/reconciler.js';
import { VmCommands } from './commands/vm-commands.js';
import { VmLogs } from './queries/vm-logs.js';
import { VmStatsQuery } from './queries/vm-stats.js';
import type { VmRecords } from './supervision/vm-records.js';
import type { UsageMeter } from './supervision/usage-meter.js';
import type { CodeCacheWatch } from './supervision/code-cache-watch.js';
import { PoolService } from './pools/pool-service.js';
import type { ReplicaSource, ServiceGateway } from './ports.js';
import { ServiceManager } from './services/service-manager.js';
import { SnapshotService } from './snapshots/snapshot-service.js';

/** The application layer, assembled: what the API and the daemon use of the core. */
export interface Core {
  records: VmRecords;
  /** Measures what running VMs use (the limits count it); the daemon starts and stops it. */
  usage: UsageMeter;
  /** Warns of VMs whose translation cache thrashes; the daemon starts and stops it. */
  codeCacheWatch: CodeCacheWatch;
  vms: VmCommands;
  snapshots: SnapshotService;
  pools: PoolService;
  services: ServiceManager;
  logs: VmLogs;
  stats: VmStatsQuery;
  reconciler: Reconciler;
}

/** The gateway is an adapter that asks the services for replicas: it is built with their source. */
export type GatewayFactory = (source: ReplicaSource) => ServiceGateway;

export function createCore(o: FleetOptions, gateway?: GatewayFactory): Core {
  const fleet = new Fleet(o);
  const snapshots = new SnapshotService(fleet);
  const vms = new VmCommands(fleet, snapshots);
  const pools = new PoolService(fleet, vms, snapshots);
  let services: ServiceManager | null = null;
  const source: ReplicaSource = {
    ready: (name) => services?.ready(name) ?? [],
    draining: (name) => services?.draining(name) ?? [],
    wake: (name) => services?.wake(name) ?? Promise.reject(new Error('services are not running')),
  };
  services = new ServiceManager(fleet, vms, pools, gateway ? gateway(source) : null);
  return {
    records: fleet.records,
    usage: fleet.usage,
    codeCacheWatch: fleet.codeCacheWatch,
    vms,
    snapshots,
    pools,
    services,
    logs: new VmLogs(fleet),
    stats: new VmStatsQuery(fleet),
    reconciler: new Reconciler(fleet),
  };
}
