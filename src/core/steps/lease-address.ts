import type { Step } from '../plan.js';
import type { BootContext } from './boot-context.js';

/** Reserves the VM's address (or finds the one it keeps across stop/start). */
export const leaseAddress: Step<BootContext> = {
  name: 'lease-address',
  async run(ctx) {
    ctx.leaseIsNew = ctx.vm.ip === null;
    ctx.lease = await ctx.deps.network.lease(ctx.vm.id);
    ctx.vm = { ...ctx.vm, ip: ctx.lease.ip, mac: ctx.lease.mac };
    ctx.deps.save(ctx.vm);
  },
  async undo(ctx, reason) {
    // A stopped VM keeps its address; only a boot that gave it one takes it back.
    if (reason !== 'rollback' || !ctx.leaseIsNew) return;
    await ctx.deps.network.release(ctx.vm.id);
    ctx.vm = { ...ctx.vm, ip: null, mac: null };
    ctx.deps.save(ctx.vm);
  },
};
