import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConsoleTail } from '../guest/console-tail.js';
import { processAlive as alive } from '../util/process.js';
import type { GuestEvent } from '../guest/console-events.js';
import { UigniterError } from './errors.js';
import { prepareBoot } from './guest-boot.js';
import type { PortMapping, VmSpec } from './models.js';
import type { ImageCatalog, Vmm, VmmProcess } from './ports.js';
import { checkArgs, checkEnv, checkName, checkPorts, checkResources } from './spec-checks.js';

export interface ForegroundRunOptions {
  image: string;
  name?: string;
  vcpus?: number;
  memMiB?: number;
  ports: PortMapping[];
  env: Record<string, string>;
  args: string[] | null;
  stopTimeoutMs: number;
  verbose: boolean;
  /** Console lines of the guest (the app's output), as they come. */
  output: (line: string) => void;
  /** Progress notes for people (ready, stopping). */
  notice: (message: string) => void;
  /** Aborting asks the VM to stop gracefully. */
  stop: AbortSignal;
  /** Aborting ends the VM at once. */
  kill: AbortSignal;
}

export interface ForegroundResult {
  exitCode: number;
  /** Milliseconds from launching the VMM to the app's readiness, if it got there. */
  readyMs: number | null;
}

const KERNEL_LINE = /^\[\s*\d+\.\d+\] /;

/** Where foreground VMs keep their files: removed when the VM ends. */
export const FOREGROUND_OWNER = 'owner.json';

/**
 * `uigniter vm run`: one VM in the foreground, no daemon. User-mode networking with
 * host port forwards (needs no root); the console is streamed; the result is the app's
 * exit status. Nothing is left behind: the VM's directory (config drive, sockets, logs)
 * is removed whatever happens.
 */
export async function runForeground(
  deps: { vmm: Vmm; images: ImageCatalog; vmsDir: string },
  o: ForegroundRunOptions,
): Promise<ForegroundResult> {
  const image = await deps.images.get(o.image);
  const vcpus = o.vcpus ?? image.vcpus;
  const memMiB = o.memMiB ?? image.memMiB;
  checkResources(image, vcpus, memMiB, { vcpus: 'vcpus', mem: 'mem' });
  checkPorts(o.ports);
  checkEnv(o.env);
  checkArgs(o.args);
  const id = randomBytes(6).toString('hex');
  const name = o.name ?? `${image.name.replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '') || 'vm'}-${id.slice(0, 6)}`;
  checkName(name);
  const spec: VmSpec = {
    image: `${image.name}:${image.tag}`,
    driver: deps.vmm.name,
    name,
    vcpus,
    memMiB,
    args: o.args,
    env: o.env,
    ports: o.ports,
    volumes: [],
    stopTimeoutMs: o.stopTimeoutMs,
  };
  const runDir = join(deps.vmsDir, `fg-${id}`);
  await mkdir(runDir, { recursive: true, mode: 0o700 });
  let vm: VmmProcess | null = null;
  let tail: ConsoleTail | null = null;
  try {
    await writeFile(join(runDir, FOREGROUND_OWNER), JSON.stringify({ pid: process.pid, image: spec.image, name }));
    const launch = await prepareBoot(
      deps.images,
      image,
      spec,
      { id, hostname: name, runDir },
      {
        nic: deps.vmm.capabilities.userNetwork
          ? { kind: 'user', mac: macFor(id), forwards: o.ports.map((p) => ({ hostAddr: p.hostAddr, hostPort: p.hostPort, guestPort: p.guestPort })) }
          : null,
        address: deps.vmm.userNetworkAddress,
        dns: [],
        search: null,
      },
      [],
      new Date(),
      o.verbose,
    );
    if (o.ports.length > 0 && !deps.vmm.capabilities.userNetwork) {
      throw new UigniterError('failed_precondition', `driver ${deps.vmm.name} cannot publish ports without the daemon`, 'ports');
    }
    tail = new ConsoleTail(launch.consoleLog, { pollMs: 50 });
    let exitEvent: Extract<GuestEvent, { event: 'exit' }> | null = null;
    let readyMs: number | null = null;
    let heldBlank = false;
    tail.on('line', (line) => {
      // The init starts its lines with a newline so they stay whole; drop that blank line.
      if (line === '') {
        if (heldBlank) o.output('');
        heldBlank = true;
        return;
      }
      const isEvent = line.startsWith('@uigniter ');
      // Kernel messages (the few `quiet` lets through) are noise unless asked for.
      const isKernel = KERNEL_LINE.test(line);
      if (heldBlank && !isEvent) o.output('');
      heldBlank = false;
      if ((!isEvent && !isKernel) || o.verbose) o.output(line);
    });
    const launchedAt = performance.now();
    tail.on('event', (e) => {
      if (e.event === 'ready') {
        readyMs = performance.now() - launchedAt;
        o.notice(`${name} ready in ${(readyMs / 1000).toFixed(2)} s`);
      } else if (e.event === 'exit') {
        exitEvent = e;
      }
    });
    tail.start();
    vm = await deps.vmm.launch(launch);
    const running = vm;
    let forced = false;
    const onStop = (): void => {
      o.notice(`stopping ${name} (again to force)`);
      running.requestStop().catch(() => undefined);
      setTimeout(() => {
        if (running.running) {
          o.notice(`${name} did not stop within ${o.stopTimeoutMs} ms: forcing it off`);
          forced = true;
          void running.kill();
        }
      }, o.stopTimeoutMs + 2000).unref();
    };
    const onKill = (): void => {
      forced = true;
      void running.kill();
    };
    o.stop.addEventListener('abort', onStop, { once: true });
    o.kill.addEventListener('abort', onKill, { once: true });
    if (o.stop.aborted) onStop();
    if (o.kill.aborted) onKill();
    const vmmExit = await running.exited;
    o.stop.removeEventListener('abort', onStop);
    o.kill.removeEventListener('abort', onKill);
    await tail.pump();
    const ev = exitEvent as Extract<GuestEvent, { event: 'exit' }> | null;
    if (ev) {
      if (ev.error) o.notice(`guest init: ${ev.error}`);
      return { exitCode: ev.code, readyMs };
    }
    if (forced) return { exitCode: 137, readyMs };
    throw new UigniterError('vmm_failed', `the VM ended without an exit status (qemu exit ${vmmExit.code ?? vmmExit.signal})`);
  } finally {
    if (vm?.running) await vm.kill();
    await tail?.stop();
    await rm(runDir, { recursive: true, force: true });
  }
}

/** A locally administered unicast MAC derived from the VM id. */
export function macFor(id: string): string {
  const hex = id.replace(/[^0-9a-f]/g, '').padEnd(10, '0').slice(0, 10);
  return ['52', ...hex.match(/../g)!].join(':');
}

/** Foreground VMs (`vm run`) of this home still running an image, as "VM name (pid N)". */
export async function foregroundUsers(vmsDir: string, imageRef: string): Promise<string | null> {
  for (const dir of await readdir(vmsDir).catch(() => [] as string[])) {
    if (!dir.startsWith('fg-')) continue;
    const owner = await readFile(join(vmsDir, dir, FOREGROUND_OWNER), 'utf8')
      .then((t) => JSON.parse(t) as { pid: number; image: string; name: string })
      .catch(() => null);
    if (owner && owner.image === imageRef && alive(owner.pid)) return `VM ${owner.name} (vm run, pid ${owner.pid})`;
  }
  return null;
}
