import type { Command } from 'commander';
import { buildKernel, findKernelSource } from '../../images/kernel-builder.js';
import { createProgress } from '../../util/progress.js';
import { localContext } from '../local.js';

export function registerKernel(program: Command): void {
  const kernel = program.command('kernel').description('the guest kernel');
  kernel
    .command('build')
    .description('build the guest vmlinux from linux-source-6.1 (cached: a second call returns at once)')
    .option('-j, --jobs <n>', 'parallel make jobs', (v) => Number(v))
    .option('--source-dir <dir>', 'where linux-source-6.1.tar.xz is', '/usr/src')
    .action(async (opts: { jobs?: number; sourceDir: string }) => {
      const { paths } = localContext(program.opts<{ home?: string }>().home);
      const progress = createProgress({ label: 'kernel' });
      const source = await findKernelSource(opts.sourceDir);
      const k = await buildKernel({ cacheDir: paths.cache, progress, source, ...(opts.jobs ? { jobs: opts.jobs } : {}) });
      process.stdout.write(`${k.path}${k.cached ? ' (cached)' : ''}\n`);
    });
}
