import { Fleet, type FleetOptions } from './supervision/fleet.js';
import { Reconciler } from './reconcile/reconciler.js';
import { VmCommands } from './commands/vm-commands.js';
import { VmLogs } from './queries/vm-logs.js';
import type { VmRecords } from './supervision/vm-records.js';
import { PoolService } from './pools/pool-service.js';
import { SnapshotService } from './snapshots/snapshot-service.js';

/** The application layer, assembled: what the API and the daemon use of the core. */
export interface Core {
  records: VmRecords;
  vms: VmCommands;
  snapshots: SnapshotService;
  pools: PoolService;
  logs: VmLogs;
  reconciler: Reconciler;
}

export function createCore(o: FleetOptions): Core {
  const fleet = new Fleet(o);
  const snapshots = new SnapshotService(fleet);
  const vms = new VmCommands(fleet, snapshots);
  return {
    records: fleet.records,
    vms,
    snapshots,
    pools: new PoolService(fleet, vms, snapshots),
    logs: new VmLogs(fleet),
    reconciler: new Reconciler(fleet),
  };
}
