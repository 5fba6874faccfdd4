import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImageManifest } from '../core/models.js';
import { FOREGROUND_OWNER } from '../core/foreground-run.js';
import { ImageStore } from '../images/image-store.js';
import { Paths, resolveHome } from '../util/paths.js';

/** What commands that work without a daemon need: the state directory and the image store. */
export function localContext(home?: string): { paths: Paths; images: ImageStore } {
  const paths = new Paths(resolveHome(home));
  return { paths, images: new ImageStore(paths) };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Foreground VMs (`vm run`) still running from this home, as "name (pid N)" by image. */
export async function foregroundUsers(paths: Paths, m: ImageManifest): Promise<string | null> {
  for (const dir of await readdir(paths.vms).catch(() => [] as string[])) {
    if (!dir.startsWith('fg-')) continue;
    const owner = await readFile(join(paths.vms, dir, FOREGROUND_OWNER), 'utf8')
      .then((t) => JSON.parse(t) as { pid: number; image: string; name: string })
      .catch(() => null);
    if (owner && owner.image === `${m.name}:${m.tag}` && alive(owner.pid)) return `VM ${owner.name} (vm run, pid ${owner.pid})`;
  }
  return null;
}
