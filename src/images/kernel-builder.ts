import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { UigniterError } from '../core/errors.js';
import { run } from '../util/exec.js';
import { exists } from '../util/fs.js';
import { sha256 } from '../util/hash.js';
import { withDirLock } from '../util/lock.js';
import { packageRoot } from '../util/package-root.js';
import type { Progress } from '../util/progress.js';

/** Bump when the build steps change in a way that changes the output. */
const RECIPE = 'tinyconfig+fragment+olddefconfig/v1';
/** Lines `make vmlinux` printed for our fragment; the bar's total until a build records its own. */
const DEFAULT_BUILD_LINES = 1600;

export interface KernelSource {
  tarball: string;
  version: string;
}

export interface Kernel {
  id: string;
  path: string;
  sourceVersion: string;
}

export interface KernelBuildOptions {
  cacheDir: string;
  fragmentPath?: string;
  source?: KernelSource;
  jobs?: number;
  progress?: Progress;
}

export function defaultFragmentPath(): string {
  return join(packageRoot(), 'guest', 'kernel', 'uigniter.config');
}

/** Debian's linux-source-6.1 package: /usr/src/linux-source-6.1.tar.xz. */
export async function findKernelSource(srcDir = '/usr/src'): Promise<KernelSource> {
  const entries = await readdir(srcDir).catch(() => [] as string[]);
  const tarball = entries.filter((e) => /^linux-source-6\.1\.tar\.(xz|gz|bz2)$/.test(e)).sort().pop();
  if (!tarball) {
    throw new UigniterError(
      'failed_precondition',
      `no kernel source in ${srcDir}: install it with 'apt-get install linux-source-6.1'`,
    );
  }
  const path = join(srcDir, tarball);
  const pkg = await run('dpkg-query', ['-W', '-f=${Version}', 'linux-source-6.1']).catch(() => null);
  const st = await stat(path);
  const version = pkg?.stdout.trim() || `${tarball}:${st.size}:${Math.floor(st.mtimeMs)}`;
  return { tarball: path, version };
}

function kernelId(sourceVersion: string, fragment: string): string {
  return sha256(`${RECIPE}\n${sourceVersion}\n${fragment}`).slice(0, 16);
}

/** The kernel for this source and fragment if it is built; never builds. */
export async function findBuiltKernel(opts: KernelBuildOptions): Promise<Kernel | null> {
  const source = opts.source ?? (await findKernelSource());
  const fragment = await readFile(opts.fragmentPath ?? defaultFragmentPath(), 'utf8');
  const id = kernelId(source.version, fragment);
  const path = join(opts.cacheDir, 'kernels', id, 'vmlinux');
  return (await exists(path)) ? { id, path, sourceVersion: source.version } : null;
}

/**
 * Every setting of the fragment (CONFIG_X=value, or "# CONFIG_X is not set") must survive
 * olddefconfig, or the kernel is not the one we asked for.
 */
export function missingOptions(fragment: string, finalConfig: string): string[] {
  const have = new Set(finalConfig.split('\n').map((l) => l.trim()));
  const setInFinal = (name: string): boolean => [...have].some((l) => l.startsWith(`${name}=`));
  return fragment
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => {
      if (/^CONFIG_[A-Z0-9_]+=/.test(l)) return !have.has(l);
      const off = /^# (CONFIG_[A-Z0-9_]+) is not set$/.exec(l);
      return off ? setInFinal(off[1]!) : false;
    });
}

/**
 * Builds vmlinux from Debian's linux-source (tinyconfig, our fragment, olddefconfig),
 * cached by a hash of the source version and the fragment: a second call returns at once.
 */
export async function buildKernel(opts: KernelBuildOptions): Promise<Kernel & { cached: boolean }> {
  const source = opts.source ?? (await findKernelSource());
  const fragmentPath = opts.fragmentPath ?? defaultFragmentPath();
  const fragment = await readFile(fragmentPath, 'utf8');
  const id = kernelId(source.version, fragment);
  const kernelsDir = join(opts.cacheDir, 'kernels');
  const finalDir = join(kernelsDir, id);
  const vmlinux = join(finalDir, 'vmlinux');
  if (await exists(vmlinux)) return { id, path: vmlinux, sourceVersion: source.version, cached: true };

  await mkdir(kernelsDir, { recursive: true });
  return withDirLock(
    join(kernelsDir, `${id}.lock`),
    async () => {
      if (await exists(vmlinux)) return { id, path: vmlinux, sourceVersion: source.version, cached: true };
      const progress = opts.progress;
      const work = join(kernelsDir, `${id}.build-${process.pid}`);
      await rm(work, { recursive: true, force: true });
      await mkdir(work, { recursive: true });
      const started = Date.now();
      try {
        progress?.stage('extract');
        await run('tar', ['-xf', source.tarball, '-C', work, '--strip-components=1']);
        progress?.stage('configure');
        await run('make', ['-C', work, 'tinyconfig']);
        await run(join(work, 'scripts/kconfig/merge_config.sh'), ['-m', '-O', work, join(work, '.config'), fragmentPath], {
          cwd: work,
        });
        await run('make', ['-C', work, 'olddefconfig']);
        const finalConfig = await readFile(join(work, '.config'), 'utf8');
        const missing = missingOptions(fragment, finalConfig);
        if (missing.length > 0) {
          throw new UigniterError(
            'failed_precondition',
            `kernel options of ${fragmentPath} did not survive olddefconfig (a dependency is off): ${missing.join(', ')}`,
          );
        }
        const history = join(kernelsDir, 'build-lines');
        const expected = Number(await readFile(history, 'utf8').catch(() => '')) || DEFAULT_BUILD_LINES;
        progress?.stage('compile', expected);
        let lines = 0;
        const jobs = opts.jobs ?? availableParallelism();
        await run('make', ['-C', work, `-j${jobs}`, 'vmlinux'], {
          onStdout: (chunk) => {
            lines += chunk.split('\n').length - 1;
            progress?.advance(lines);
          },
        });
        await writeFile(history, String(lines));
        const staged = join(work, 'out');
        await mkdir(staged);
        await copyFile(join(work, 'vmlinux'), join(staged, 'vmlinux'));
        await copyFile(join(work, '.config'), join(staged, 'config'));
        await writeFile(
          join(staged, 'build.json'),
          JSON.stringify(
            { id, sourceVersion: source.version, fragment: fragmentPath, seconds: (Date.now() - started) / 1000 },
            null,
            2,
          ),
        );
        await rename(staged, finalDir);
        progress?.finish(`kernel ${id} built`);
        return { id, path: vmlinux, sourceVersion: source.version, cached: false };
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
    () => opts.progress?.info('another process is building this kernel; waiting for it'),
  );
}
