import type { Command } from 'commander';
import { createProgress } from '../../util/progress.js';
import { foregroundUsers } from '../../core/foreground-run.js';
import { localContext } from '../local.js';
import { humanBytes, printJson, table } from '../output.js';

export function registerImage(program: Command): void {
  const image = program.command('image').description('build and manage app images');
  const ctx = () => localContext(program.opts<{ home?: string }>().home);

  image
    .command('build <dir>')
    .description('pack a Node.js app (or a static binary) into a bootable image')
    .requiredOption('-n, --name <name[:tag]>', 'image name and optional tag')
    .option('--entry <path>', 'entry point inside the app directory')
    .option('--mem <MiB>', 'default memory', (v) => Number(v))
    .option('--vcpus <n>', 'default vCPUs', (v) => Number(v))
    .option('--json', 'print the manifest as JSON')
    .action(async (dir: string, opts: { name: string; entry?: string; mem?: number; vcpus?: number; json?: boolean }) => {
      const { images } = ctx();
      const progress = createProgress({ label: 'image' });
      const { manifest, unchanged } = await images.build(dir, opts.name, {
        overrides: { entry: opts.entry, memMiB: opts.mem, vcpus: opts.vcpus },
        progress,
      });
      if (opts.json) return printJson(manifest);
      process.stdout.write(`${manifest.name}:${manifest.tag} ${manifest.digest.slice(0, 19)}${unchanged ? ' (unchanged)' : ''}\n`);
    });

  image
    .command('ls')
    .description('list images')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean }) => {
      const list = await ctx().images.list();
      if (opts.json) return printJson(list);
      process.stdout.write(
        `${table(
          ['NAME', 'TAG', 'DIGEST', 'RUNTIME', 'SIZE', 'MEM', 'CREATED'],
          list.map((m) => [
            m.name,
            m.tag,
            m.digest.slice(7, 19),
            m.runtime.kind,
            humanBytes(m.layers.reduce((s, l) => s + l.size, 0)),
            `${m.memMiB} MiB`,
            m.createdAt.replace('T', ' ').slice(0, 19),
          ]),
        )}\n`,
      );
    });

  image
    .command('inspect <ref>')
    .description('print an image manifest')
    .action(async (ref: string) => printJson(await ctx().images.get(ref)));

  image
    .command('rm <ref>')
    .description('remove an image (refused while a VM uses it)')
    .action(async (ref: string) => {
      const { images, paths } = ctx();
      const { stateUsers, stateLayers } = await import('../state-usage.js');
      const m = await images.remove(
        ref,
        async (manifest) => (await foregroundUsers(paths.vms, `${manifest.name}:${manifest.tag}`)) ?? stateUsers(paths, manifest),
        () => stateLayers(paths),
      );
      process.stdout.write(`removed ${m.name}:${m.tag}\n`);
    });
}
