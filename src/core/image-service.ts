import { foregroundUsers } from './foreground-run.js';
import { KeyedMutex } from './keyed-mutex.js';
import type { ImageManifest } from './models.js';
import type { ImageRepository, StateStore } from './ports.js';
import type { SnapshotService } from './snapshots/snapshot-service.js';
import { UigniterError } from './errors.js';

/** Images as the API sees them: builds one at a time per name, removal refused while used. */
export class ImageService {
  private readonly builds = new KeyedMutex();

  constructor(
    private readonly repo: ImageRepository,
    private readonly store: StateStore,
    private readonly vmsDir: string,
    private readonly snapshots: SnapshotService,
  ) {}

  list(): Promise<ImageManifest[]> {
    return this.repo.list();
  }

  get(ref: string): Promise<ImageManifest> {
    return this.repo.get(ref, 'name');
  }

  build(path: string, ref: string): Promise<{ manifest: ImageManifest; unchanged: boolean }> {
    if (!path.startsWith('/')) throw new UigniterError('invalid_argument', `path '${path}' must be absolute (it is read on the daemon's host)`, 'path');
    return this.builds.run(ref.split(':')[0] ?? ref, async () => {
      try {
        return await this.repo.build(path, ref);
      } catch (e) {
        // The image store names the app directory 'dir' (the CLI's argument); the API's
        // request calls it 'path', and an error names the field of the request it answers.
        if (e instanceof UigniterError && e.field === 'dir') throw new UigniterError(e.code, e.message, 'path');
        throw e;
      }
    });
  }

  /**
   * Removes an image unless a VM or a named snapshot uses it; its templates go with it. The
   * layers a VM or a snapshot still needs (of this or an older build) are kept.
   */
  async remove(ref: string): Promise<ImageManifest> {
    const removed = await this.repo.remove(
      ref,
      async (m) => {
        const imageRef = `${m.name}:${m.tag}`;
        const vms = this.store.listVms().filter((v) => v.spec.image === imageRef);
        if (vms.length > 0) return `VM${vms.length > 1 ? 's' : ''} ${vms.map((v) => v.name).join(', ')}`;
        const snaps = this.store.listSnapshots('snapshot').filter((s) => s.spec.image === imageRef);
        if (snaps.length > 0) return `snapshot${snaps.length > 1 ? 's' : ''} ${snaps.map((s) => s.name).join(', ')}`;
        return foregroundUsers(this.vmsDir, imageRef);
      },
      async () =>
        new Set([
          ...this.store.listVms().flatMap((v) => v.manifest.layers.map((l) => l.id)),
          ...this.store.listSnapshots().filter((s) => s.kind === 'snapshot').flatMap((s) => s.manifest.layers.map((l) => l.id)),
        ]),
    );
    await this.snapshots.dropTemplatesOf(`${removed.name}:${removed.tag}`);
    return removed;
  }
}
