import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { exists } from '../util/fs.js';
import { digestTree, materializeTree, type TreeEntry } from './file-tree.js';
import { makeSquashfs } from './squashfs.js';

export interface Layer {
  /** "sha256:<hex>" of the tree; also written into the layer as /.uigniter-layer. */
  id: string;
  file: string;
  size: number;
}

/** Marker the guest init reads to tell which disk holds which layer (see guest/init/init.c). */
export const LAYER_MARKER = '.uigniter-layer';

/**
 * Content-addressed read-only layers: <home>/layers/<hex>.sqfs. A layer is shared by every
 * image (and every VM) that has the same tree, attached read-only, never copied per VM.
 */
export class LayerStore {
  constructor(private readonly dir: string) {}

  fileFor(id: string): string {
    return join(this.dir, `${id.replace(/^sha256:/, '')}.sqfs`);
  }

  async ensure(entries: readonly TreeEntry[], digest?: string): Promise<Layer & { cached: boolean }> {
    const hex = digest ?? (await digestTree(entries));
    const id = `sha256:${hex}`;
    const file = this.fileFor(id);
    if (await exists(file)) return { id, file, size: (await stat(file)).size, cached: true };
    await mkdir(this.dir, { recursive: true });
    const work = join(this.dir, `.build-${hex.slice(0, 12)}-${process.pid}`);
    try {
      await materializeTree([...entries, { path: LAYER_MARKER, kind: 'data', data: `${id}\n`, mode: 0o444 }], work);
      const size = await makeSquashfs(work, file);
      return { id, file, size, cached: false };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /** Removes layers no image refers to any more. */
  async collectGarbage(inUse: ReadonlySet<string>): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (name.startsWith('.build-')) continue;
      const m = /^([0-9a-f]{64})\.sqfs$/.exec(name);
      if (!m || inUse.has(`sha256:${m[1]}`)) continue;
      await rm(join(this.dir, name), { force: true });
      removed.push(`sha256:${m[1]}`);
    }
    return removed;
  }
}
