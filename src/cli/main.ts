#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { packageVersion } from '../util/package-root.js';
import { registerDaemon } from './commands/daemon.js';
import { registerDemo } from './commands/demo.js';
import { registerImage } from './commands/image.js';
import { registerKernel } from './commands/kernel.js';
import { registerRemote } from './commands/remote.js';
import { registerService } from './commands/service.js';
import { registerVm } from './commands/vm.js';
import { EXIT, reportError } from './output.js';

const program = new Command('uigniter')
  .description('run apps as microVMs: images, a QEMU microvm driver, a daemon with a REST API, snapshots and clones')
  .version(packageVersion())
  .option('--home <dir>', 'state directory (default $UIGNITER_HOME or /var/lib/uigniter)')
  .exitOverride()
  .configureOutput({ outputError: (s, write) => write(s) });

registerKernel(program);
registerImage(program);
registerVm(program);
registerDaemon(program);
registerRemote(program);
registerService(program);
registerDemo(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    process.exitCode = e.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    process.exitCode = reportError(e);
  }
}
