import { notFound, UigniterError } from './errors.js';
import type { VolumeRecord } from './models.js';
import type { StateStore, VolumeDisks } from './ports.js';

export interface VolumeInfo extends VolumeRecord {
  usedBy: string[];
}

/** Volumes outlive VMs; one is removed only when no VM names it. */
export class VolumeService {
  constructor(
    private readonly store: StateStore,
    private readonly disks: VolumeDisks,
  ) {}

  private usedBy(name: string): string[] {
    return this.store
      .listVms()
      .filter((v) => v.spec.volumes.some((w) => w.name === name))
      .map((v) => v.name);
  }

  list(): VolumeInfo[] {
    return this.store.listVolumes().map((v) => ({ ...v, usedBy: this.usedBy(v.name) }));
  }

  async remove(name: string): Promise<VolumeRecord> {
    const v = this.store.getVolume(name);
    if (!v) throw notFound('volume', name);
    const users = this.usedBy(name);
    if (users.length > 0) {
      throw new UigniterError('in_use', `volume '${name}' is used by VM${users.length > 1 ? 's' : ''} ${users.join(', ')}; delete ${users.length > 1 ? 'them' : 'it'} first`);
    }
    this.store.deleteVolume(name);
    await this.disks.remove(name);
    return v;
  }
}
