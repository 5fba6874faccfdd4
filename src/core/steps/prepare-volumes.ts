import { randomUUID } from 'node:crypto';
import { UigniterError } from '../errors.js';
import type { Step } from '../plan.js';
import type { BootContext } from './boot-context.js';

/** Creates missing volumes (ext4, on first use) and attaches them to this VM only. */
export const prepareVolumes: Step<BootContext> = {
  name: 'prepare-volumes',
  async run(ctx) {
    const { store, volumes, clock } = ctx.deps;
    for (const want of ctx.vm.spec.volumes) {
      let v = store.getVolume(want.name);
      if (v?.attachedTo && v.attachedTo !== ctx.vm.id) {
        const holder = store.getVm(v.attachedTo);
        if (holder && holder.state !== 'stopped' && holder.state !== 'failed') {
          throw new UigniterError('in_use', `volume '${want.name}' is attached to VM ${holder.name}`, 'volumes');
        }
      }
      if (!v) {
        const uuid = randomUUID();
        const path = await volumes.create(want.name, want.sizeMiB, uuid);
        v = { name: want.name, sizeMiB: want.sizeMiB, uuid, createdAt: clock.now().toISOString(), attachedTo: null };
        try {
          store.insertVolume(v);
        } catch (e) {
          await volumes.remove(want.name);
          throw e;
        }
        ctx.createdVolumes.push(want.name);
        void path;
      }
      store.updateVolume({ ...v, attachedTo: ctx.vm.id });
      ctx.volumes.push({ path: volumes.pathOf(want.name), uuid: v.uuid, mountPath: want.mountPath, readOnly: want.readOnly });
    }
  },
  async undo(ctx, reason) {
    const { store, volumes } = ctx.deps;
    for (const want of ctx.vm.spec.volumes) {
      const v = store.getVolume(want.name);
      if (v && v.attachedTo === ctx.vm.id) store.updateVolume({ ...v, attachedTo: null });
    }
    if (reason === 'rollback') {
      // Volumes this boot created held nothing yet; volumes that existed keep their data.
      for (const name of ctx.createdVolumes.reverse()) {
        store.deleteVolume(name);
        await volumes.remove(name);
      }
      ctx.createdVolumes = [];
    }
    ctx.volumes = [];
  },
};
