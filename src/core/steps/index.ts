import type { Step } from '../plan.js';
import type { BootContext } from './boot-context.js';
import { createTap } from './create-tap.js';
import { launchVmm } from './launch-vmm.js';
import { leaseAddress } from './lease-address.js';
import { prepareVolumes } from './prepare-volumes.js';
import { publishPorts } from './publish-ports.js';
import { registerName } from './register-name.js';
import { waitReady } from './wait-ready.js';
import { writeConfig } from './write-config.js';

/** The boot plan, in order, up to the VMM running. */
export const LAUNCH_STEPS: readonly Step<BootContext>[] = [
  leaseAddress,
  prepareVolumes,
  createTap,
  writeConfig,
  launchVmm,
  publishPorts,
  registerName,
];

/** Then, until the app answers. */
export const READY_STEPS: readonly Step<BootContext>[] = [waitReady];

export const ALL_STEP_NAMES = [...LAUNCH_STEPS, ...READY_STEPS].map((s) => s.name);
