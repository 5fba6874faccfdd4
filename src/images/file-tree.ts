import { chmod, copyFile, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { sha256, sha256File } from '../util/hash.js';

/** One entry of a layer, named by its path inside the layer. */
export type TreeEntry =
  | { path: string; kind: 'file'; source: string; mode: number }
  | { path: string; kind: 'data'; data: string | Buffer; mode: number }
  | { path: string; kind: 'symlink'; target: string }
  | { path: string; kind: 'dir'; mode: number };

/**
 * A content digest of a tree: paths, kinds, modes and file contents, in path order. Two
 * trees with the same digest pack into the same layer, so an unchanged app is not rebuilt.
 */
export async function digestTree(entries: readonly TreeEntry[]): Promise<string> {
  const lines: string[] = [];
  for (const e of [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    switch (e.kind) {
      case 'file':
        lines.push(`${e.path}\0f\0${(e.mode & 0o777).toString(8)}\0${await sha256File(e.source)}`);
        break;
      case 'data':
        lines.push(`${e.path}\0f\0${(e.mode & 0o777).toString(8)}\0${sha256(e.data)}`);
        break;
      case 'symlink':
        lines.push(`${e.path}\0l\0${e.target}`);
        break;
      case 'dir':
        lines.push(`${e.path}\0d\0${(e.mode & 0o777).toString(8)}`);
        break;
    }
  }
  return sha256(lines.join('\n'));
}

/** Writes the tree under root (which must not exist yet or be empty). */
export async function materializeTree(entries: readonly TreeEntry[], root: string): Promise<void> {
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  for (const e of entries) {
    const dest = join(root, e.path);
    if (e.kind === 'dir') {
      await mkdir(dest, { recursive: true });
      await chmod(dest, e.mode & 0o777);
      continue;
    }
    await mkdir(dirname(dest), { recursive: true });
    if (e.kind === 'file') {
      await copyFile(e.source, dest);
      await chmod(dest, e.mode & 0o777);
    } else if (e.kind === 'data') {
      await writeFile(dest, e.data);
      await chmod(dest, e.mode & 0o777);
    } else {
      await symlink(e.target, dest);
    }
  }
}
