import type { Step } from '../plan.js';
import type { BootContext } from './boot-context.js';

/** Makes the VM's name resolve to its address for the other VMs. */
export const registerName: Step<BootContext> = {
  name: 'register-name',
  async run(ctx) {
    ctx.deps.network.setName(ctx.vm.name, ctx.lease!.ip);
  },
  async undo(ctx) {
    ctx.deps.network.setName(ctx.vm.name, null);
  },
};
