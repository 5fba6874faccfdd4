import { rm } from 'node:fs/promises';
import { launchSpecFor } from '../guest-boot.js';
import type { Step } from '../plan.js';
import { tapNetwork, type BootContext } from './boot-context.js';
import { endVmm, startVmm } from './launch-vmm.js';

/**
 * Starts the VMM from saved memory and device state instead of the kernel: the same disks
 * (the image's layers, the VM's volumes, the config drive the state was saved with) and a
 * NIC on this VM's own tap. The driver hands it back paused with its link cut.
 */
export const restoreVmm: Step<BootContext> = {
  name: 'restore-vmm',
  async run(ctx) {
    const src = ctx.restore!;
    ctx.launch = await launchSpecFor(
      ctx.deps.images,
      ctx.image,
      ctx.vm.spec,
      { id: ctx.vm.id, hostname: ctx.vm.name, runDir: ctx.runDir },
      tapNetwork(ctx),
      ctx.volumes,
      src.state.configDrive,
    );
    const { dir, memory, bytes, compat } = src.state;
    await startVmm(ctx, () => ctx.vmm.restore(ctx.launch!, { dir, memory, bytes, compat }));
  },
  async undo(ctx, reason) {
    await endVmm(ctx);
    ctx.launch = null;
    // A VM resumed from its own suspension ran on that saved memory: once its VMM is gone
    // the files have served (a failed resume keeps them, to try again).
    const src = ctx.restore;
    if (reason === 'halt' && src && src.snapshot === null && ctx.vm.suspendedState?.dir === src.state.dir) {
      await rm(src.state.dir, { recursive: true, force: true });
      ctx.vm = { ...ctx.vm, suspendedState: null };
      ctx.deps.save(ctx.vm);
    }
  },
};
