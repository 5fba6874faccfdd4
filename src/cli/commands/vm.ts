import type { Command } from 'commander';
import { runForeground } from '../../core/foreground-run.js';
import type { PortMapping } from '../../core/models.js';
import { parseEnvFlag, parsePortFlag } from '../../core/spec-checks.js';
import { QemuVmm } from '../../drivers/qemu/qemu-vmm.js';
import { localContext } from '../local.js';
import { EXIT, reportError } from '../output.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function registerVm(program: Command): void {
  const vm = program.command('vm').description('run a VM without the daemon');
  vm.command('run <image> [args...]')
    .description('boot an image in the foreground, stream its console, exit with the app\'s status; Ctrl-C stops it')
    .option('--mem <MiB>', 'memory in MiB', (v) => Number(v))
    .option('--vcpus <n>', 'vCPUs', (v) => Number(v))
    .option('-p, --publish <host:guest>', 'publish a guest TCP port on 127.0.0.1 (repeatable)', collect, [])
    .option('-e, --env <K=V>', 'environment variable for the app (repeatable)', collect, [])
    .option('--name <name>', 'VM name (also its hostname)')
    .option('--stop-timeout <s>', 'seconds the app gets after SIGTERM', (v) => Number(v), 10)
    .option('-v, --verbose', 'show kernel messages and guest init events')
    .action(async (image: string, args: string[], opts: { mem?: number; vcpus?: number; publish: string[]; env: string[]; name?: string; stopTimeout: number; verbose?: boolean }) => {
      let code: number;
      try {
        const { paths, images } = localContext(program.opts<{ home?: string }>().home);
        const ports: PortMapping[] = opts.publish.map(parsePortFlag);
        const env = Object.fromEntries(opts.env.map(parseEnvFlag));
        const stop = new AbortController();
        const kill = new AbortController();
        let interrupts = 0;
        const onSignal = (): void => {
          interrupts++;
          if (interrupts === 1) stop.abort();
          else kill.abort();
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        const result = await runForeground(
          { vmm: new QemuVmm(), images, vmsDir: paths.vms },
          {
            image,
            ...(opts.name ? { name: opts.name } : {}),
            ...(opts.vcpus !== undefined ? { vcpus: opts.vcpus } : {}),
            ...(opts.mem !== undefined ? { memMiB: opts.mem } : {}),
            ports,
            env,
            args: args.length > 0 ? args : null,
            stopTimeoutMs: Math.round(opts.stopTimeout * 1000),
            verbose: Boolean(opts.verbose),
            output: (line) => process.stdout.write(`${line}\n`),
            notice: (m) => process.stderr.write(`uigniter: ${m}\n`),
            stop: stop.signal,
            kill: kill.signal,
          },
        );
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        code = result.exitCode;
      } catch (e) {
        reportError(e);
        code = EXIT.runFailed;
      }
      process.exitCode = code;
    });
}
