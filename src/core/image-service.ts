import { foregroundUsers } from './foreground-run.js';
import { KeyedMutex } from './keyed-mutex.js';
import type { ImageManifest } from './models.js';
import type { ImageRepository, StateStore } from './ports.js';
import { UigniterError } from './errors.js';

/** Images as the API sees them: builds one at a time per name, removal refused while used. */
export class ImageService {
  private readonly builds = new KeyedMutex();

  constructor(
    private readonly repo: ImageRepository,
    private readonly store: StateStore,
    private readonly vmsDir: string,
  ) {}

  list(): Promise<ImageManifest[]> {
    return this.repo.list();
  }

  get(ref: string): Promise<ImageManifest> {
    return this.repo.get(ref, 'name');
  }

  build(path: string, ref: string): Promise<{ manifest: ImageManifest; unchanged: boolean }> {
    if (!path.startsWith('/')) throw new UigniterError('invalid_argument', `path '${path}' must be absolute (it is read on the daemon's host)`, 'path');
    return this.builds.run(ref.split(':')[0] ?? ref, () => this.repo.build(path, ref));
  }

  remove(ref: string): Promise<ImageManifest> {
    return this.repo.remove(
      ref,
      async (m) => {
        const imageRef = `${m.name}:${m.tag}`;
        const vms = this.store.listVms().filter((v) => v.spec.image === imageRef);
        if (vms.length > 0) return `VM${vms.length > 1 ? 's' : ''} ${vms.map((v) => v.name).join(', ')}`;
        return foregroundUsers(this.vmsDir, imageRef);
      },
      async () => new Set(this.store.listVms().flatMap((v) => v.manifest.layers.map((l) => l.id))),
    );
  }
}
