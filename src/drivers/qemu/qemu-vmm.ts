import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UigniterError } from '../../core/errors.js';
import type { LaunchSpec, Vmm, VmmCapabilities, VmmProcess } from '../../core/ports.js';
import { ConsoleTail } from '../../guest/console-tail.js';
import { which } from '../../util/exec.js';
import { QMP_SOCKET, qemuArgs, VMM_LOG, type Accel, type QemuHost } from './command-line.js';
import { hostTscKhz, kvmFacts } from './host-facts.js';
import { processAlive as pidAlive } from '../../util/process.js';
import { QemuProcess, isOurQemu } from './qemu-process.js';
import { QmpClient } from './qmp-client.js';

export interface QemuVmmOptions {
  binary?: string;
  /** 'auto' probes KVM with a real guest and falls back to TCG. */
  accel?: Accel | 'auto';
  log?: (msg: string) => void;
}

/** The embedded default driver: QEMU's microvm machine, one process per VM. */
export class QemuVmm implements Vmm {
  readonly name = 'qemu';
  readonly capabilities: VmmCapabilities = {
    pause: true,
    snapshot: false,
    tapNetwork: true,
    userNetwork: true,
    // microvm has 8 virtio-mmio transports; the NIC and the entropy device take two.
    maxDisks: 6,
  };
  private host: Promise<QemuHost> | null = null;

  constructor(private readonly opts: QemuVmmOptions = {}) {}

  /** Resolves the binary, the accelerator and the TSC frequency once, at first use. */
  hostFor(spec: LaunchSpec): Promise<QemuHost> {
    this.host ??= (async () => {
      const binary = this.opts.binary ?? (await which('qemu-system-x86_64'));
      if (!binary) {
        throw new UigniterError('failed_precondition', "qemu-system-x86_64 not found: 'apt-get install qemu-system-x86'");
      }
      const tscKhz = await hostTscKhz();
      const wanted = this.opts.accel ?? (process.env.UIGNITER_ACCEL as Accel | 'auto' | undefined) ?? 'auto';
      let accel: Accel = wanted === 'kvm' ? 'kvm' : 'tcg';
      if (wanted === 'auto') accel = (await this.probeKvm(binary, tscKhz, spec)) ? 'kvm' : 'tcg';
      this.opts.log?.(`qemu: ${binary}, accelerator ${accel}`);
      return { binary, accel, tscKhz };
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

  async commandLine(spec: LaunchSpec): Promise<{ command: string; args: string[] }> {
    const host = await this.hostFor(spec);
    const args = qemuArgs(spec, host);
    const nic = spec.nic;
    if (nic?.kind === 'tap' && nic.netns) {
      // The tap lives in the VM network namespace, so QEMU must open it from there.
      return { command: 'nsenter', args: [`--net=/run/netns/${nic.netns}`, '--', host.binary, ...args] };
    }
    return { command: host.binary, args };
  }

  async launch(spec: LaunchSpec): Promise<VmmProcess> {
    if (spec.disks.length > this.capabilities.maxDisks) {
      throw new UigniterError('invalid_argument', `a VM can have at most ${this.capabilities.maxDisks} disks (layers, volumes and its config drive); it asked for ${spec.disks.length}`, 'volumes');
    }
    await mkdir(spec.runDir, { recursive: true });
    await rm(join(spec.runDir, QMP_SOCKET), { force: true });
    const { command, args } = await this.commandLine(spec);
    const logPath = join(spec.runDir, VMM_LOG);
    const logFd = openSync(logPath, 'a');
    // Detached: a VM outlives the process that started it (a daemon restart adopts it).
    const child = spawn(command, args, { detached: true, stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    child.unref();
    const spawned = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid!));
      child.once('error', reject);
    }).catch((e: unknown) => {
      throw new UigniterError('vmm_failed', `cannot start ${command}: ${String(e)}`);
    });
    const early = new Promise<never>((_, reject) =>
      child.once('exit', async () => {
        const log = (await readFile(logPath, 'utf8').catch(() => '')).trim().split('\n').slice(-3).join(' | ');
        reject(new UigniterError('vmm_failed', `qemu exited at start: ${log || 'no message'}`));
      }),
    );
    early.catch(() => undefined);
    let qmp: QmpClient;
    try {
      qmp = await Promise.race([QmpClient.connect(join(spec.runDir, QMP_SOCKET), 10_000), early]);
    } catch (e) {
      if (pidAlive(spawned)) process.kill(spawned, 'SIGKILL');
      throw e instanceof UigniterError ? e : new UigniterError('vmm_failed', `qemu did not answer on QMP: ${String(e)}`);
    }
    return new QemuProcess(spawned, qmp, child);
  }

  async listRunning(vmsDir: string): Promise<{ vmId: string; pid: number }[]> {
    const out: { vmId: string; pid: number }[] = [];
    for (const entry of await readdir('/proc').catch(() => [] as string[])) {
      if (!/^\d+$/.test(entry)) continue;
      const argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
      if (!argv.some((a) => a.includes('qemu-system'))) continue;
      const name = argv[argv.indexOf('-name') + 1] ?? '';
      const m = /^uigniter-([a-z0-9-]+),/.exec(name);
      if (m && argv.some((a) => a.startsWith(`${vmsDir}/`) || a.includes(`path=${vmsDir}/`))) out.push({ vmId: m[1]!, pid: Number(entry) });
    }
    return out;
  }

  async adopt(vmId: string, pid: number, runDir: string): Promise<VmmProcess | null> {
    if (!pidAlive(pid) || !(await isOurQemu(pid, vmId))) return null;
    try {
      const qmp = await QmpClient.connect(join(runDir, QMP_SOCKET), 3000);
      return new QemuProcess(pid, qmp, null);
    } catch {
      return null;
    }
  }
}
