import { chmod, copyFile, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UigniterError } from '../core/errors.js';
import { run, which } from '../util/exec.js';
import { exists } from '../util/fs.js';
import { sha256, sha256File } from '../util/hash.js';
import { withDirLock } from '../util/lock.js';
import { packageRoot } from '../util/package-root.js';
import { readElf } from './elf.js';

const RECIPE = 'init+busybox-cpio/v1';

export interface Initrd {
  id: string;
  path: string;
}

/** Files every guest root has under the app's layers (from /base in the initramfs). */
const BASE_FILES: Record<string, string> = {
  'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
  'etc/group': 'root:x:0:\nnogroup:x:65534:\n',
  'etc/nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files dns\n',
};
const BASE_DIRS = ['proc', 'sys', 'dev', 'tmp', 'run', 'root', 'app', 'data', 'etc', 'bin'];

export async function findBusybox(): Promise<string> {
  for (const candidate of ['/bin/busybox', '/usr/bin/busybox']) {
    if (!(await exists(candidate))) continue;
    const elf = await readElf(candidate);
    if (elf && !elf.interpreter) return candidate;
  }
  throw new UigniterError(
    'failed_precondition',
    "no static busybox found: install it with 'apt-get install busybox-static'",
  );
}

/**
 * The initramfs of every guest: our init (guest/init/init.c, compiled static with the
 * host's gcc) as /init, and a static busybox under /base that becomes the bottom layer
 * of the app's root, so apps get /bin/sh. Cached by the hash of both; built once.
 */
export async function buildInitrd(cacheDir: string): Promise<Initrd & { cached: boolean }> {
  const source = join(packageRoot(), 'guest', 'init', 'init.c');
  const busybox = await findBusybox();
  const id = sha256(`${RECIPE}\n${await sha256File(source)}\n${await sha256File(busybox)}`).slice(0, 16);
  const dir = join(cacheDir, 'initrd');
  const out = join(dir, `${id}.cpio`);
  if (await exists(out)) return { id, path: out, cached: true };
  await mkdir(dir, { recursive: true });
  return withDirLock(join(dir, `${id}.lock`), async () => {
    if (await exists(out)) return { id, path: out, cached: true };
    if (!(await which('gcc'))) {
      throw new UigniterError('failed_precondition', "gcc is needed to build the guest init: 'apt-get install gcc libc6-dev'");
    }
    const work = join(dir, `${id}.build-${process.pid}`);
    await rm(work, { recursive: true, force: true });
    try {
      const root = join(work, 'root');
      await mkdir(join(root, 'base'), { recursive: true });
      await run('gcc', ['-static', '-Os', '-s', '-Wall', '-Wno-format-truncation', '-o', join(root, 'init'), source]);
      for (const d of BASE_DIRS) await mkdir(join(root, 'base', d), { recursive: true });
      await copyFile(busybox, join(root, 'base', 'bin', 'busybox'));
      await chmod(join(root, 'base', 'bin', 'busybox'), 0o755);
      const { stdout } = await run(busybox, ['--list']);
      for (const applet of stdout.split('\n').map((s) => s.trim()).filter(Boolean)) {
        if (applet === 'busybox' || applet.includes('/')) continue;
        await symlink('busybox', join(root, 'base', 'bin', applet));
      }
      for (const [file, content] of Object.entries(BASE_FILES)) await writeFile(join(root, 'base', file), content);
      const list = (await run('find', ['.', '-mindepth', '1'], { cwd: root })).stdout
        .split('\n')
        .filter(Boolean)
        .sort()
        .join('\n');
      const tmp = `${out}.tmp`;
      await run('cpio', ['-o', '-H', 'newc', '--quiet', '--reproducible', '-O', tmp], { cwd: root, input: `${list}\n` });
      await rename(tmp, out);
      return { id, path: out, cached: false };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
}
