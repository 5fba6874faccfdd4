import type { Step } from '../plan.js';
import type { BootContext } from './boot-context.js';

/** Listens on the VM's published host ports and forwards them to the guest. */
export const publishPorts: Step<BootContext> = {
  name: 'publish-ports',
  async run(ctx) {
    if (ctx.vm.spec.ports.length === 0) return;
    ctx.unpublish = await ctx.deps.network.publish(ctx.vm.id, ctx.lease!.ip, ctx.vm.spec.ports);
  },
  async undo(ctx) {
    const u = ctx.unpublish;
    ctx.unpublish = null;
    await u?.();
  },
};
