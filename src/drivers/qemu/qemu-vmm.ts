import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UigniterError } from '../../core/errors.js';
import type { GuestAddress, LaunchSpec, Vmm, VmmCapabilities, VmmExit, VmmProcess, VmmSnapshot } from '../../core/ports.js';
import { ConsoleTail } from '../../guest/console-tail.js';
import { run, which } from '../../util/exec.js';
import { processAlive as pidAlive, processArgv as procArgv } from '../../util/process.js';
import {
  AGENT_SOCKET,
  argvFacts,
  compatString,
  qemuArgs,
  QMP_SOCKET,
  USER_NET_ADDRESS,
  VMM_LOG,
  type Accel,
  type GuestMemory,
  type QemuArgsOptions,
  type QemuArgvFacts,
  type QemuHost,
} from './command-line.js';
import { Confinement, joinCgroups, type Confined } from './confinement.js';
import { hostTscKhz, kvmFacts } from './host-facts.js';
import { QemuProcess, SNAPSHOT_MEMORY, SNAPSHOT_STATE } from './qemu-process.js';
import { QmpClient } from './qmp-client.js';

export interface QemuVmmOptions {
  binary?: string;
  /** 'auto' probes KVM with a real guest and falls back to TCG. */
  accel?: Accel | 'auto';
  /**
   * Where guests' RAM files live (`<memDir>/<vmId>.ram`): a tmpfs, so RAM stays RAM. One
   * per daemon home: removeOrphans removes the files in it that no VM uses.
   */
  memDir?: string;
  /**
   * Confine each VMM (chroot, own uid, seccomp, no capabilities, cgroup: confinement.ts).
   * Default on (`UIGNITER_CONFINE=off` turns it off); it needs root, so a daemon or a
   * `vm run` that is not root runs its VMMs unconfined, as itself.
   */
  confine?: boolean;
  log?: (msg: string) => void;
}

/** Where RAM files go when the daemon names no directory: one per user (`vm run` needs no root). */
export const DEFAULT_MEM_DIR = process.getuid?.() ? `/dev/shm/uigniter-u${process.getuid()}` : '/dev/shm/uigniter';

/** QEMU processes of this driver running now, with what their command lines say. */
async function runningQemus(): Promise<{ pid: number; facts: QemuArgvFacts }[]> {
  const out: { pid: number; facts: QemuArgvFacts }[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const facts = argvFacts(await procArgv(Number(entry)));
    if (facts && pidAlive(Number(entry))) out.push({ pid: Number(entry), facts });
  }
  return out;
}

/** The last lines of QEMU's log, to explain why it failed. */
async function logTail(runDir: string): Promise<string> {
  const log = (await readFile(join(runDir, VMM_LOG), 'utf8').catch(() => '')).trim().split('\n').slice(-3).join(' | ');
  return log || 'no message';
}

/** The embedded default driver: QEMU's microvm machine, one process per VM. */
export class QemuVmm implements Vmm {
  readonly name = 'qemu';
  readonly capabilities: VmmCapabilities = {
    pause: true,
    snapshot: true,
    tapNetwork: true,
    userNetwork: true,
    // microvm has 8 virtio-mmio transports: the NIC, the entropy device and the agent's
    // virtio-serial take three, disks get the other five.
    maxDisks: 5,
  };
  readonly userNetworkAddress: GuestAddress = USER_NET_ADDRESS;
  readonly memDir: string;
  /** Whether this driver confines the VMMs it starts. */
  readonly confined: boolean;
  private host: Promise<QemuHost> | null = null;
  private jailer: Promise<Confinement> | null = null;

  constructor(private readonly opts: QemuVmmOptions = {}) {
    this.memDir = resolve(opts.memDir ?? DEFAULT_MEM_DIR);
    const wanted = opts.confine ?? process.env.UIGNITER_CONFINE !== 'off';
    this.confined = wanted && process.getuid?.() === 0;
    if (wanted && !this.confined) opts.log?.('qemu: VMMs run unconfined: confining them (chroot, another uid, cgroups) needs root');
  }

  /** The confinement's state (uids handed out, cgroups), built at first use: also for adopted VMs of a confined daemon. */
  private confinement(): Promise<Confinement> {
    this.jailer ??= Confinement.create(basename(this.memDir), (m) => this.opts.log?.(m));
    return this.jailer;
  }

  /** Resolves the binary, its version, the accelerator and the TSC frequency once, at first use. */
  hostFor(spec: LaunchSpec): Promise<QemuHost> {
    this.host ??= (async () => {
      const binary = this.opts.binary ?? (await which('qemu-system-x86_64'));
      if (!binary) {
        throw new UigniterError('failed_precondition', "qemu-system-x86_64 not found: 'apt-get install qemu-system-x86'");
      }
      const { stdout } = await run(binary, ['--version']);
      const version = /version (\d+\.\d+\.\d+)/.exec(stdout)?.[1];
      if (!version) throw new UigniterError('failed_precondition', `cannot read the version of ${binary}: ${stdout.split('\n')[0]}`);
      const tscKhz = await hostTscKhz();
      const wanted = this.opts.accel ?? (process.env.UIGNITER_ACCEL as Accel | 'auto' | undefined) ?? 'auto';
      let accel: Accel = wanted === 'kvm' ? 'kvm' : 'tcg';
      if (wanted === 'auto') accel = (await this.probeKvm(binary, tscKhz, spec)) ? 'kvm' : 'tcg';
      this.opts.log?.(`qemu: ${binary} ${version}, accelerator ${accel}`);
      return { binary, accel, tscKhz, version };
    })();
    this.host.catch(() => (this.host = null));
    return this.host;
  }

  /** KVM only where a real KVM boots a probe guest to its init within a few seconds. */
  private async probeKvm(binary: string, tscKhz: number | null, spec: LaunchSpec): Promise<boolean> {
    const facts = await kvmFacts();
    if (!facts.usable) {
      this.opts.log?.(`qemu: not using KVM: ${facts.reason}`);
      return false;
    }
    const dir = join(spec.runDir, '..', `.kvm-probe-${process.pid}`);
    await mkdir(dir, { recursive: true });
    const probe: LaunchSpec = {
      ...spec,
      vmId: `kvm-probe-${process.pid}`,
      disks: [],
      nic: null,
      address: null,
      runDir: dir,
      consoleLog: join(dir, 'console.log'),
      vcpus: 1,
      memMiB: 64,
    };
    const child = spawn(binary, qemuArgs(probe, { binary, accel: 'kvm', tscKhz }), { stdio: 'ignore' });
    const tail = new ConsoleTail(probe.consoleLog).start();
    try {
      // With no config drive the init reports an exit at once: proof the kernel ran.
      await tail.waitFor((e) => e.event === 'exit', 8000);
      return true;
    } catch {
      return false;
    } finally {
      child.kill('SIGKILL');
      await tail.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }

  async compat(spec: LaunchSpec): Promise<string> {
    const host = await this.hostFor(spec);
    return compatString(host.version!, host.accel);
  }

  /** A VM's own RAM file. */
  memoryPath(vmId: string): string {
    return join(this.memDir, `${vmId}.ram`);
  }

  private async command(spec: LaunchSpec, opts: QemuArgsOptions): Promise<{ command: string; args: string[] }> {
    const host = await this.hostFor(spec);
    let argv = [host.binary, ...qemuArgs(spec, host, opts)];
    const nic = spec.nic;
    if (nic?.kind === 'tap' && nic.netns) {
      // The tap lives in the VM network namespace, so QEMU must open it from there
      // (nsenter execs QEMU: the pid stays QEMU's).
      argv = ['nsenter', `--net=/run/netns/${nic.netns}`, '--', ...argv];
    }
    return { command: argv[0]!, args: argv.slice(1) };
  }

  /** The unconfined command line of a VM (what the boot benchmark runs by hand). */
  async commandLine(spec: LaunchSpec): Promise<{ command: string; args: string[] }> {
    return this.command(spec, { memory: { path: this.memoryPath(spec.vmId), shared: true } });
  }

  async launch(spec: LaunchSpec): Promise<VmmProcess> {
    this.checkDisks(spec);
    return this.start(spec, { memory: { path: this.memoryPath(spec.vmId), shared: true } }, true);
  }

  async restore(spec: LaunchSpec, snapshot: VmmSnapshot): Promise<VmmProcess> {
    this.checkDisks(spec);
    const here = await this.compat(spec);
    if (snapshot.compat !== here) {
      throw new UigniterError('failed_precondition', `the snapshot was taken on '${snapshot.compat}' and this driver is '${here}': it cannot be restored here`);
    }
    await stat(join(snapshot.dir, SNAPSHOT_STATE)).catch(() => {
      throw new UigniterError('failed_precondition', `snapshot ${snapshot.dir} has no ${SNAPSHOT_STATE} file`);
    });
    let memory: GuestMemory;
    if (snapshot.memory === 'file') {
      const file = join(snapshot.dir, SNAPSHOT_MEMORY);
      const size = await stat(file).then((s) => s.size).catch(() => null);
      if (size === null) throw new UigniterError('failed_precondition', `snapshot ${snapshot.dir} has no ${SNAPSHOT_MEMORY} file`);
      if (size !== spec.memMiB * 1024 * 1024) {
        throw new UigniterError('failed_precondition', `the snapshot holds ${size / 1024 / 1024} MiB of memory; the VM asks for ${spec.memMiB} MiB`);
      }
      memory = { path: file, shared: false };
    } else {
      memory = { path: this.memoryPath(spec.vmId), shared: true };
    }
    const proc = await this.start(spec, { memory, incoming: true }, memory.shared);
    try {
      await proc.loadSnapshot(snapshot.dir, snapshot.memory === 'file');
      return proc;
    } catch (e) {
      await proc.kill();
      throw e;
    }
  }

  private checkDisks(spec: LaunchSpec): void {
    if (spec.disks.length > this.capabilities.maxDisks) {
      throw new UigniterError('invalid_argument', `a VM can have at most ${this.capabilities.maxDisks} disks (layers, volumes and its config drive); it asked for ${spec.disks.length}`, 'volumes');
    }
  }

  /** Starts QEMU detached and connects to its QMP; on any failure nothing is left (process, sockets, RAM file). */
  private async start(spec: LaunchSpec, opts: QemuArgsOptions, ownsMemory: boolean): Promise<QemuProcess> {
    await mkdir(spec.runDir, { recursive: true });
    if (opts.memory && ownsMemory) {
      // The files hold guests' memory: QEMU creates them 0644, the directory keeps others out.
      await mkdir(this.memDir, { recursive: true, mode: 0o700 });
      await chmod(this.memDir, 0o700).catch(() => undefined);
      // A file left by a crash would hand its old pages to the new guest.
      await rm(opts.memory.path, { force: true });
    }
    const sockets = [join(spec.runDir, QMP_SOCKET), join(spec.runDir, AGENT_SOCKET)];
    for (const f of sockets) await rm(f, { force: true });
    // What a failed start must not leave: the sockets, and the RAM file if it is the VM's own
    // (never a snapshot's memory file, which a clone only maps).
    const leftovers = [...sockets, ...(opts.memory && ownsMemory ? [opts.memory.path] : [])];
    const host = await this.hostFor(spec);
    let confined: Confined | null = null;
    if (this.confined) confined = await (await this.confinement()).prepare(spec, host.accel);
    const release = async (): Promise<void> => {
      if (confined) await (await this.confinement()).release(spec.vmId);
    };
    // A VMM with cgroups to join starts with its guest paused (a restore's always is) and
    // joins them while it starts; the guest runs once it is in (see joinCgroups).
    const cgroupProcs = confined?.cgroupProcs ?? [];
    const holdGuest = cgroupProcs.length > 0 && !opts.incoming;
    const { command, args } = await this.command(spec, { ...opts, jail: confined?.jail, paused: holdGuest }).catch(async (e: unknown) => {
      await release();
      throw e;
    });
    const logPath = join(spec.runDir, VMM_LOG);
    const logFd = openSync(logPath, 'a');
    // Detached: a VM outlives the process that started it (a daemon restart adopts it).
    const child = spawn(command, args, { detached: true, stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    child.unref();
    const childExit = new Promise<VmmExit>((res) => child.once('exit', (code, signal) => res({ code, signal })));
    const cleanup = async (): Promise<void> => {
      for (const f of leftovers) await rm(f, { force: true });
      await release();
    };
    const spawned = await new Promise<number>((res, reject) => {
      child.once('spawn', () => res(child.pid!));
      child.once('error', reject);
    }).catch(async (e: unknown) => {
      await cleanup();
      throw new UigniterError('vmm_failed', `cannot start ${command}: ${String(e)}`);
    });
    const early = childExit.then(async (x) => {
      const how = x.signal ? `signal ${x.signal}` : `code ${x.code}`;
      throw new UigniterError('vmm_failed', `qemu exited at start (${how}): ${await logTail(spec.runDir)}`);
    });
    early.catch(() => undefined);
    const joined = joinCgroups(spawned, cgroupProcs).catch((e: unknown) => {
      throw new UigniterError('vmm_failed', `cannot move QEMU into its cgroup: ${String(e)}`);
    });
    joined.catch(() => undefined);
    let qmp: QmpClient | null = null;
    try {
      qmp = await Promise.race([QmpClient.connect(join(spec.runDir, QMP_SOCKET), 10_000), early]);
      await joined;
      if (holdGuest) await qmp.execute('cont');
    } catch (e) {
      qmp?.close();
      if (pidAlive(spawned)) process.kill(spawned, 'SIGKILL');
      await Promise.race([childExit, sleep(2000)]);
      await cleanup();
      throw e instanceof UigniterError ? e : new UigniterError('vmm_failed', `qemu did not answer on QMP: ${String(e)}`);
    }
    return QemuProcess.create({
      pid: spawned,
      qmp,
      childExit,
      runDir: spec.runDir,
      memory: opts.memory ?? null,
      ownsMemory,
      hasNic: spec.nic !== null,
      compat: compatString(host.version!, host.accel),
      why: () => logTail(spec.runDir),
      sockets: confined
        ? { host: confined.jail.dir, vmm: '/', owner: { uid: confined.jail.uid, gid: confined.jail.gid } }
        : { host: spec.runDir, vmm: spec.runDir, owner: null },
      onExit: confined ? release : undefined,
    });
  }

  async adopt(vmId: string, pid: number, runDir: string): Promise<VmmProcess | null> {
    if (!pidAlive(pid)) return null;
    // Its command line must name this VM: the pid may have been recycled.
    const facts = argvFacts(await procArgv(pid));
    if (facts?.vmId !== vmId) return null;
    let qmp: QmpClient;
    try {
      qmp = await QmpClient.connect(join(runDir, QMP_SOCKET), 3000);
    } catch {
      return null;
    }
    // The version of the running process, not of the binary now installed.
    const v = await qmp.execute<{ qemu: { major: number; minor: number; micro: number } }>('query-version').catch(() => null);
    const version = v ? `${v.qemu.major}.${v.qemu.minor}.${v.qemu.micro}` : 'unknown';
    // A confined VMM names its migration sockets inside its chroot, and runs as its own uid.
    const owner = await stat(`/proc/${pid}`).then((s) => (s.uid === 0 ? null : { uid: s.uid, gid: s.gid })).catch(() => null);
    const jail = facts.chroot;
    return QemuProcess.create({
      pid,
      qmp,
      childExit: null,
      runDir,
      memory: facts.memory,
      // Its RAM file is its own when shared and named after it (a clone maps its snapshot's file).
      ownsMemory: facts.memory !== null && facts.memory.shared && basename(facts.memory.path) === `${vmId}.ram`,
      hasNic: facts.hasNic,
      compat: compatString(version, facts.accel),
      why: () => logTail(runDir),
      sockets: jail ? { host: jail, vmm: '/', owner } : { host: runDir, vmm: runDir, owner },
      onExit: jail ? async () => (await this.confinement()).release(vmId) : undefined,
    });
  }

  async removeOrphans(vmsDir: string, keep: ReadonlySet<string>): Promise<string[]> {
    const lines: string[] = [];
    const dir = resolve(vmsDir);
    const all = await runningQemus();
    // Only VMs run from vmsDir/<vmId>: vmsDir/fg-<id> belongs to a foreground `vm run`.
    const orphans = all.filter((p) => p.facts.runDir !== null && resolve(p.facts.runDir) === join(dir, p.facts.vmId) && !keep.has(p.facts.vmId));
    for (const p of orphans) {
      try {
        process.kill(p.pid, 'SIGKILL');
        lines.push(`killed the orphaned VMM of ${p.facts.vmId} (pid ${p.pid})`);
      } catch {
        /* gone */
      }
    }
    const deadline = Date.now() + 3000;
    while (orphans.some((p) => pidAlive(p.pid)) && Date.now() < deadline) await sleep(20);
    for (const p of orphans) {
      for (const f of [QMP_SOCKET, AGENT_SOCKET]) await rm(join(p.facts.runDir!, f), { force: true });
    }
    const inUse = new Set(all.filter((p) => !orphans.includes(p) && p.facts.memory).map((p) => resolve(p.facts.memory!.path)));
    for (const f of await readdir(this.memDir).catch(() => [] as string[])) {
      const m = /^(.+)\.ram$/.exec(f);
      const path = join(this.memDir, f);
      if (!m || keep.has(m[1]!) || inUse.has(path)) continue;
      await rm(path, { force: true });
      lines.push(`removed the orphaned memory file ${path}`);
    }
    // Cgroups left by VMMs that ended while no daemon watched them (only empty ones go).
    if (this.confined) lines.push(...(await (await this.confinement()).removeOrphans(keep, new Set(orphans.map((o) => o.facts.vmId)))));
    return lines;
  }
}

