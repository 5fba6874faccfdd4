import type { Command } from 'commander';
import type { RunBody, SnapshotView, UigniterClient, VmView } from '../../client/client.js';
import { parseEnvFlag, parsePortFlag } from '../../core/spec-checks.js';
import { invalid } from '../../core/errors.js';
import { humanBytes, printJson, table } from '../output.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];
const int = (v: string): number => Number(v);

/** The HTTP client loads undici, which costs ~60 ms: only commands that talk to the daemon pay. */
async function connect(): Promise<UigniterClient> {
  const { UigniterClient: Client } = await import('../../client/client.js');
  return new Client();
}

/** "-v name:/path[:sizeMiB][:ro]" */
export function parseVolumeFlag(s: string): NonNullable<RunBody['volumes']>[number] {
  const [name, mountPath, ...rest] = s.split(':');
  if (!name || !mountPath) throw invalid('volumes', `volume '${s}' must be NAME:/PATH[:SIZE_MIB][:ro]`);
  const v: NonNullable<RunBody['volumes']>[number] = { name, mountPath };
  for (const r of rest) {
    if (r === 'ro') v.readOnly = true;
    else if (/^\d+$/.test(r)) v.sizeMiB = Number(r);
    else throw invalid('volumes', `volume '${s}': '${r}' is neither a size in MiB nor 'ro'`);
  }
  return v;
}

function age(iso: string): string {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function vmRows(vms: VmView[]): string {
  return table(
    ['ID', 'NAME', 'IMAGE', 'STATE', 'IP', 'PORTS', 'BOOT', 'AGE'],
    vms.map((v) => [
      v.id.slice(0, 12),
      v.name,
      v.image,
      v.state === 'failed' && v.error ? `failed (${v.error.slice(0, 40)})` : v.exitCode !== null && v.state === 'stopped' ? `stopped (${v.exitCode})` : v.state,
      v.ip,
      v.ports.map((p) => `${p.hostAddr}:${p.hostPort}->${p.guestPort}`).join(',') || null,
      v.bootMs === null ? null : `${(v.bootMs / 1000).toFixed(2)}s`,
      age(v.stateChangedAt),
    ]),
  );
}

function snapshotRows(list: SnapshotView[]): string {
  return table(
    ['NAME', 'KIND', 'IMAGE', 'FROM VM', 'MEMORY', 'SIZE', 'USED BY', 'AGE'],
    list.map((s) => [s.name, s.kind, s.image, s.source.name, `${s.memMiB} MiB (${s.memory})`, humanBytes(s.sizeBytes), s.usedBy.join(',') || null, age(s.createdAt)]),
  );
}

function printVm(v: VmView, json: boolean | undefined): void {
  if (json) printJson(v);
  else process.stdout.write(`${vmRows([v])}\n`);
}

export function registerRemote(program: Command): void {
  program
    .command('run [image] [args...]')
    .description('create and boot a VM through the daemon (or clone a snapshot with --snapshot)')
    .option('--name <name>', 'VM name (also its hostname and DNS name)')
    .option('--snapshot <name>', 'clone this snapshot or template instead of booting an image')
    .option('--boot <mode>', "auto (from the spec's template when one exists), cold, or template")
    .option('--mem <MiB>', 'memory', int)
    .option('--vcpus <n>', 'vCPUs', int)
    .option('-p, --publish <host:guest>', 'publish a guest port on 127.0.0.1 (repeatable)', collect, [])
    .option('-e, --env <K=V>', 'environment variable (repeatable)', collect, [])
    .option('-v, --volume <name:/path[:MiB][:ro]>', 'persistent volume (repeatable)', collect, [])
    .option('--stop-timeout <s>', 'seconds the app gets after SIGTERM', int)
    .option('--read-only', 'no writable layer over the root: writes to / fail (EROFS); /tmp, /run and volumes stay writable')
    .option('--code-cache <MiB>', "bound of the VMM's translation cache under TCG (default 32; a busy guest needs more)", int)
    .option('-d, --detach', 'answer once the VM is launched, without waiting for the app to be ready')
    .option('--json', 'JSON output')
    .action(async (image: string | undefined, args: string[], o: { name?: string; snapshot?: string; boot?: string; mem?: number; vcpus?: number; publish: string[]; env: string[]; volume: string[]; stopTimeout?: number; readOnly?: boolean; codeCache?: number; detach?: boolean; json?: boolean }) => {
      if (o.boot !== undefined && !['auto', 'cold', 'template'].includes(o.boot)) throw invalid('boot', `--boot must be auto, cold or template, not '${o.boot}'`);
      if ((image === undefined) === (o.snapshot === undefined)) throw invalid('image', 'give an image, or --snapshot NAME to clone a snapshot');
      const body: RunBody = {
        ...(image !== undefined ? { image } : {}),
        ...(o.snapshot !== undefined ? { snapshot: o.snapshot } : {}),
        ...(o.boot !== undefined ? { boot: o.boot as 'auto' | 'cold' | 'template' } : {}),
        ...(o.name ? { name: o.name } : {}),
        ...(o.mem !== undefined ? { memMiB: o.mem } : {}),
        ...(o.vcpus !== undefined ? { vcpus: o.vcpus } : {}),
        ...(args.length ? { args } : {}),
        ...(o.env.length ? { env: Object.fromEntries(o.env.map(parseEnvFlag)) } : {}),
        ...(o.publish.length ? { ports: o.publish.map(parsePortFlag).map((p) => ({ hostPort: p.hostPort, guestPort: p.guestPort, hostAddr: p.hostAddr })) } : {}),
        ...(o.volume.length ? { volumes: o.volume.map(parseVolumeFlag) } : {}),
        ...(o.stopTimeout !== undefined ? { stopTimeoutMs: o.stopTimeout * 1000 } : {}),
        ...(o.readOnly ? { readOnly: true } : {}),
        ...(o.codeCache !== undefined ? { codeCacheMiB: o.codeCache } : {}),
      };
      printVm(await (await connect()).run(body, o.detach ? 'launched' : 'ready'), o.json);
    });

  program
    .command('start <vm>')
    .description('boot a stopped VM again (same spec, same address)')
    .option('-d, --detach', 'do not wait for ready')
    .option('--json', 'JSON output')
    .action(async (ref: string, o: { detach?: boolean; json?: boolean }) => printVm(await (await connect()).start(ref, o.detach ? 'launched' : 'ready'), o.json));

  program
    .command('stop <vm>')
    .description('stop a VM: SIGTERM to its app, forced off after the timeout (or --suspend: save it, start resumes it)')
    .option('-t, --timeout <s>', 'seconds before forcing it off', int)
    .option('--suspend', 'save its memory instead; the next start continues where it was')
    .option('--json', 'JSON output')
    .action(async (ref: string, o: { timeout?: number; suspend?: boolean; json?: boolean }) =>
      printVm(await (await connect()).stop(ref, o.timeout, { suspend: Boolean(o.suspend) }), o.json),
    );

  for (const [cmd, what] of [
    ['pause', 'pause a VM (its vCPUs stop; memory, address and connections stay)'],
    ['resume', 'resume a paused VM'],
  ] as const) {
    program
      .command(`${cmd} <vm>`)
      .description(what)
      .option('--json', 'JSON output')
      .action(async (ref: string, o: { json?: boolean }) => printVm(await (await connect())[cmd](ref), o.json));
  }

  program
    .command('snapshot <vm> <name>')
    .description('save a named snapshot of a running VM (it runs on); clone it with run --snapshot')
    .option('--json', 'JSON output')
    .action(async (ref: string, name: string, o: { json?: boolean }) => {
      const s = await (await connect()).snapshot(ref, name);
      if (o.json) printJson(s);
      else process.stdout.write(`${snapshotRows([s])}\n`);
    });

  const snap = program.command('snapshots').description('named snapshots and templates');
  snap
    .command('ls', { isDefault: true })
    .description('list snapshots and templates')
    .option('--json', 'JSON output')
    .action(async (o: { json?: boolean }) => {
      const c = await connect();
      const all = [...(await c.snapshots()), ...(await c.templates())];
      if (o.json) printJson(all);
      else process.stdout.write(`${snapshotRows(all)}\n`);
    });
  snap
    .command('rm <name...>')
    .description('remove snapshots or templates (refused while a running VM depends on one)')
    .action(async (names: string[]) => {
      const c = await connect();
      for (const n of names) {
        await (n.startsWith('tpl-') ? c.removeTemplate(n) : c.removeSnapshot(n));
        process.stdout.write(`${n}\n`);
      }
    });

  program
    .command('rm <vm...>')
    .description('delete VMs (stopping them first); their addresses are freed')
    .option('-f, --force', 'force running VMs off instead of stopping them gracefully')
    .option('--volumes', 'also delete their volumes')
    .action(async (refs: string[], o: { force?: boolean; volumes?: boolean }) => {
      for (const ref of refs) {
        await (await connect()).remove(ref, { ...(o.force ? { force: true } : {}), ...(o.volumes ? { volumes: true } : {}) });
        process.stdout.write(`${ref}\n`);
      }
    });

  program
    .command('ps')
    .description('list VMs')
    .option('--json', 'JSON output')
    .action(async (o: { json?: boolean }) => {
      const vms = await (await connect()).list();
      if (o.json) printJson(vms);
      else process.stdout.write(`${vmRows(vms)}\n`);
    });

  program
    .command('inspect <vm>')
    .description('everything about a VM, as JSON')
    .action(async (ref: string) => printJson(await (await connect()).get(ref)));

  program
    .command('stats <vm>')
    .description("what a running VM's VMM holds and burns, and its translation cache")
    .option('--json', 'JSON output')
    .action(async (ref: string, o: { json?: boolean }) => {
      const s = await (await connect()).stats(ref);
      if (o.json) return printJson(s);
      const u = s.usage;
      const lines = [
        `vm          ${s.name} (${s.id})`,
        u ? `memory      ${u.pssMiB.toFixed(1)} MiB PSS, ${u.growthMiB.toFixed(1)} MiB more it may take` : 'memory      not measured yet',
        u ? `cpu         ${u.cpuPct === null ? '-' : `${u.cpuPct.toFixed(1)}% of a core`}` : 'cpu         not measured yet',
        s.codeCache
          ? `code cache  ${s.codeCache.usedMiB.toFixed(1)} of ${s.codeCache.boundMiB} MiB, emptied ${s.codeCache.flushes} time(s) since the VMM started (a restore counts one)${s.codeCache.flushes >= 2 ? '; if this grows while the VM works, give it a larger --code-cache' : ''}`
          : 'code cache  none (KVM)',
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  program
    .command('logs <vm>')
    .description("a VM's console (its app's output)")
    .option('-f, --follow', 'keep streaming until the VM stops')
    .option('-n, --tail <lines>', 'only the last lines', int)
    .action(async (ref: string, o: { follow?: boolean; tail?: number }) => {
      if (o.follow) {
        const ac = new AbortController();
        process.once('SIGINT', () => ac.abort());
        await (await connect())
          .followLogs(ref, (s) => process.stdout.write(s), ac.signal)
          .catch((e: unknown) => {
            if (!ac.signal.aborted) throw e;
          });
      } else {
        process.stdout.write(await (await connect()).logs(ref, o.tail));
      }
    });

  program
    .command('images')
    .description("list the daemon's images")
    .option('--json', 'JSON output')
    .action(async (o: { json?: boolean }) => {
      const list = await (await connect()).images();
      if (o.json) return printJson(list);
      process.stdout.write(`${table(['NAME', 'TAG', 'DIGEST', 'RUNTIME', 'SIZE', 'MEM'], list.map((m) => [m.name, m.tag, m.digest.slice(7, 19), m.runtime, humanBytes(m.sizeBytes), `${m.memMiB} MiB`]))}\n`);
    });

  program
    .command('build <dir>')
    .description('build an image through the daemon (the directory is read on its host)')
    .requiredOption('-n, --name <name[:tag]>', 'image name')
    .option('--json', 'JSON output')
    .action(async (dir: string, o: { name: string; json?: boolean }) => {
      const { resolve } = await import('node:path');
      const img = await (await connect()).buildImage(resolve(dir), o.name);
      if (o.json) printJson(img);
      else process.stdout.write(`${img.name}:${img.tag} ${img.digest.slice(0, 19)}\n`);
    });

  const volume = program.command('volume').description('persistent volumes');
  volume
    .command('ls')
    .option('--json', 'JSON output')
    .action(async (o: { json?: boolean }) => {
      const list = await (await connect()).volumes();
      if (o.json) return printJson(list);
      process.stdout.write(`${table(['NAME', 'SIZE', 'ATTACHED', 'USED BY'], list.map((v) => [v.name, `${v.sizeMiB} MiB`, v.attachedTo?.slice(0, 12), v.usedBy.join(',') || null]))}\n`);
    });
  volume
    .command('rm <name...>')
    .description('delete volumes and their data (refused while a VM names them)')
    .action(async (names: string[]) => {
      for (const n of names) {
        await (await connect()).removeVolume(n);
        process.stdout.write(`${n}\n`);
      }
    });
}

