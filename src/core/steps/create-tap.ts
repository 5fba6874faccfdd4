import type { Step } from '../plan.js';
import type { BootContext } from './boot-context.js';

/**
 * The VM's tap: on the bridge for a cold boot; off it for a restore, whose guest still
 * holds the snapshot's identity until `renew-identity` puts the tap on the bridge.
 */
export const createTap: Step<BootContext> = {
  name: 'create-tap',
  async run(ctx) {
    ctx.tap = await ctx.deps.network.createTap(ctx.vm.id, { detached: ctx.restore !== null });
    ctx.vm = { ...ctx.vm, tap: ctx.tap };
    ctx.deps.save(ctx.vm);
  },
  async undo(ctx) {
    if (!ctx.tap) return;
    await ctx.deps.network.deleteTap(ctx.tap);
    ctx.tap = null;
    ctx.vm = { ...ctx.vm, tap: null };
    ctx.deps.save(ctx.vm);
  },
};
