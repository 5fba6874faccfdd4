import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { VolumeDisks } from '../core/ports.js';
import { run } from '../util/exec.js';

/**
 * Volumes as sparse ext4 image files under <home>/volumes, one per name. The filesystem
 * UUID is chosen by the caller: it is how the guest init recognises the disk.
 */
export class Ext4Volumes implements VolumeDisks {
  constructor(private readonly dir: string) {}

  pathOf(name: string): string {
    return join(this.dir, `${name}.ext4`);
  }

  async create(name: string, sizeMiB: number, uuid: string): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    const path = this.pathOf(name);
    const fh = await open(path, 'wx', 0o600); // never overwrite an existing volume
    try {
      await fh.truncate(sizeMiB * 1024 * 1024);
    } finally {
      await fh.close();
    }
    try {
      // Lazy init: the guest kernel zeroes inode tables in the background, so creating a
      // large volume costs milliseconds, not a full write.
      await run('mkfs.ext4', ['-q', '-F', '-U', uuid, '-L', name.slice(0, 16), '-m', '0', '-E', 'lazy_itable_init=1,lazy_journal_init=1', path]);
    } catch (e) {
      await rm(path, { force: true });
      throw e;
    }
    return path;
  }

  async remove(name: string): Promise<void> {
    await rm(this.pathOf(name), { force: true });
  }
}
