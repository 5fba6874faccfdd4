import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CONFIG_DRIVE, prepareBoot } from '../guest-boot.js';
import type { Step } from '../plan.js';
import { tapNetwork, type BootContext } from './boot-context.js';

/** Writes the config drive and works out the VMM's launch spec. */
export const writeConfig: Step<BootContext> = {
  name: 'write-config',
  async run(ctx) {
    const lease = ctx.lease!;
    ctx.launch = await prepareBoot(
      ctx.deps.images,
      ctx.image,
      ctx.vm.spec,
      { id: ctx.vm.id, hostname: ctx.vm.name, runDir: ctx.runDir },
      {
        ...tapNetwork(ctx),
        dns: lease.dns,
        search: lease.search,
      },
      ctx.volumes,
      ctx.deps.clock.now(),
    );
  },
  async undo(ctx) {
    await rm(join(ctx.runDir, CONFIG_DRIVE), { force: true });
    ctx.launch = null;
  },
};
