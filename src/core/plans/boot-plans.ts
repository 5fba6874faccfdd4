/**
 * One plan per way a VM comes up. Each is two phases: `launch` runs under the VM's lock
 * until the VMM runs; `ready` may run after the API has answered (wait=launched). A
 * failure in either phase rolls back every step done so far, in both phases.
 */
import { UigniterError } from '../errors.js';
import type { Step } from '../plan.js';
import type { Vmm } from '../ports.js';
import type { BootContext } from '../steps/boot-context.js';
import { createTap } from '../steps/create-tap.js';
import { launchVmm } from '../steps/launch-vmm.js';
import { leaseAddress } from '../steps/lease-address.js';
import { prepareVolumes } from '../steps/prepare-volumes.js';
import { publishPorts } from '../steps/publish-ports.js';
import { registerName } from '../steps/register-name.js';
import { renewIdentity } from '../steps/renew-identity.js';
import { restoreVmm } from '../steps/restore-vmm.js';
import { waitReady } from '../steps/wait-ready.js';
import { writeConfig } from '../steps/write-config.js';

export interface BootPlan {
  launch: readonly Step<BootContext>[];
  ready: readonly Step<BootContext>[];
}

/** A cold boot: kernel, init, app, until the app answers its readiness check. */
export const COLD_BOOT: BootPlan = {
  launch: [leaseAddress, prepareVolumes, createTap, writeConfig, launchVmm, publishPorts, registerName],
  ready: [waitReady],
};

/**
 * A restore (a clone of a snapshot or template, or a suspended VM resuming): the VMM loads
 * saved state; the guest takes its own identity before its link comes up, and its name is
 * published only then, so nobody reaches the clone while it still has the snapshot's.
 */
export const RESTORE: BootPlan = {
  launch: [leaseAddress, prepareVolumes, createTap, restoreVmm],
  ready: [renewIdentity, publishPorts, registerName],
};

export function restorePlanFor(vmm: Vmm): BootPlan {
  if (!vmm.capabilities.snapshot) {
    throw new UigniterError('failed_precondition', `driver ${vmm.name} cannot restore snapshots`, 'driver');
  }
  return RESTORE;
}

/**
 * A VM adopted after a daemon restart: the steps that made lasting things (lease, volumes,
 * tap, the VMM) count as done; port proxies and DNS names lived in the old daemon process
 * and run again.
 */
export const ADOPT = {
  done: [leaseAddress, prepareVolumes, createTap, writeConfig, launchVmm] as readonly Step<BootContext>[],
  redo: [publishPorts, registerName] as readonly Step<BootContext>[],
};

/** Every step name, for failure injection and its tests. */
export const STEP_NAMES = {
  cold: [...COLD_BOOT.launch, ...COLD_BOOT.ready].map((s) => s.name),
  restore: [...RESTORE.launch, ...RESTORE.ready].map((s) => s.name),
};
