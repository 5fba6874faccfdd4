import type { ImageManifest } from '../core/models.js';
import { SqliteStore } from '../state/sqlite-store.js';
import { exists } from '../util/fs.js';
import type { Paths } from '../util/paths.js';

/** The daemon's VMs that use an image, read from its state file without the daemon. */
export async function stateUsers(paths: Paths, m: ImageManifest): Promise<string | null> {
  if (!(await exists(paths.stateDb))) return null;
  const store = new SqliteStore(paths.stateDb, { readonly: true });
  try {
    const vms = store.listVms({ imageRef: `${m.name}:${m.tag}` });
    return vms.length > 0 ? `VM${vms.length > 1 ? 's' : ''} ${vms.map((v) => v.name).join(', ')}` : null;
  } finally {
    store.close();
  }
}

/** Layers the daemon's VMs were created from (kept even when their image is gone). */
export async function stateLayers(paths: Paths): Promise<Set<string>> {
  const out = new Set<string>();
  if (!(await exists(paths.stateDb))) return out;
  const store = new SqliteStore(paths.stateDb, { readonly: true });
  try {
    for (const vm of store.listVms()) for (const l of vm.manifest.layers) out.add(l.id);
  } finally {
    store.close();
  }
  return out;
}
