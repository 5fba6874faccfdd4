import { createHash } from 'node:crypto';
import { chown, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LaunchSpec } from '../../core/ports.js';
import type { Accel, VmmJail } from './command-line.js';
import { Cgroups, type CgroupLimits } from './cgroups.js';

/**
 * Each VMM runs as a uid of its own, taken from a fixed range that no distribution hands
 * out (systemd leaves 1879048192-2147483647 unused; container ranges sit below), with a gid
 * of the same number and no passwd entry (`-runas uid:gid`). One uid per VM, not one
 * service user: a VMM that a guest took over cannot signal, ptrace or read the files of
 * another VM's VMM; and nothing is added to /etc/passwd.
 */
export const VMM_UID_BASE = 1_900_000_000;
export const VMM_UID_COUNT = 65_536;

/** The chroot of a VMM: an empty directory in its run directory, owned by its uid. */
export const JAIL_DIR = 'jail';

/**
 * The VMM's own memory beside the guest's RAM. The cgroup counts the tmpfs RAM file pages
 * the guest touched, QEMU's heap and, under TCG, its translated code, plus page cache of
 * the disks (reclaimed at the limit, not fatal). Measured (cgroup v1 max_usage) on the
 * `counter` fixture, 192 MiB guest, TCG, booted to ready: 194 MiB in all; the margin is
 * for a guest that touches all its RAM while TCG's code cache grows. Not yet measured
 * under KVM (none here): 96 MiB is an estimate.
 */
export const VMM_OVERHEAD_MIB: Record<Accel, number> = { tcg: 192, kvm: 96 };
/** One CPU beside the vCPUs: QEMU's main loop (virtio, QMP, migration) runs apart from the vCPU threads. */
export const VMM_OVERHEAD_CPUS = 1;
export const CPU_PERIOD_US = 100_000;

/** A VM's cgroup limits: its RAM plus the measured VMM overhead, its vCPUs plus one. */
export function vmmLimits(spec: Pick<LaunchSpec, 'memMiB' | 'vcpus'>, accel: Accel): CgroupLimits {
  return {
    memoryBytes: (spec.memMiB + VMM_OVERHEAD_MIB[accel]) * 1024 * 1024,
    cpuQuotaUs: (spec.vcpus + VMM_OVERHEAD_CPUS) * CPU_PERIOD_US,
    cpuPeriodUs: CPU_PERIOD_US,
  };
}

/**
 * Moves a started VMM (all its threads) into the VM's cgroup(s): its pid written to each
 * cgroup.procs. The first move after a quiet moment waits for an RCU grace period (the
 * kernel's cgroup_threadgroup_rwsem; 15 ms measured here on cgroup v1), so the driver does
 * it while QEMU starts, with the guest held paused (-S) until it is done: the guest's
 * pages, its code cache and everything QEMU allocates for it are charged to the VM's
 * group; only what QEMU allocated for itself while starting (a few MiB) is not.
 */
export async function joinCgroups(pid: number, cgroupProcs: readonly string[]): Promise<void> {
  for (const f of cgroupProcs) await writeFile(f, String(pid));
}

/** What the driver does to confine one VMM before starting it. */
export interface Confined {
  jail: VmmJail;
  /** The cgroup.procs files to join (none when the host has no usable cgroups). */
  cgroupProcs: string[];
}

/** The confinement of a driver's VMMs: uids, jails and cgroups. */
export class Confinement {
  /** uids handed out by this driver and not yet released, by VM. */
  private readonly taken = new Map<string, number>();

  private constructor(
    readonly cgroups: Cgroups | null,
    private readonly instance: string,
  ) {}

  /** `why` receives the reason when there are no cgroups (the rest of the confinement still applies). */
  static async create(instance: string, why: (msg: string) => void): Promise<Confinement> {
    const cg = await Cgroups.detect(instance);
    if (typeof cg === 'string') why(`qemu: VMMs run without cgroup limits: ${cg}`);
    return new Confinement(typeof cg === 'string' ? null : cg, instance);
  }

  /** A uid for the VM: derived from its id, the next free one when another process has it. */
  private async uidFor(vmId: string): Promise<number> {
    const inUse = new Set(this.taken.values());
    for (const p of await readdir('/proc').catch(() => [] as string[])) {
      if (!/^\d+$/.test(p)) continue;
      const s = await stat(`/proc/${p}`).catch(() => null);
      if (s && s.uid >= VMM_UID_BASE && s.uid < VMM_UID_BASE + VMM_UID_COUNT) inUse.add(s.uid);
    }
    const start = createHash('sha256').update(`${this.instance}/${vmId}`).digest().readUInt32BE(0) % VMM_UID_COUNT;
    for (let i = 0; i < VMM_UID_COUNT; i++) {
      const uid = VMM_UID_BASE + ((start + i) % VMM_UID_COUNT);
      if (!inUse.has(uid)) return uid;
    }
    throw new Error('no free VMM uid');
  }

  /**
   * Makes the VM's jail (an empty directory owned by its uid, mode 0700: QEMU creates its
   * incoming migration socket there) and its cgroup. Undo with `release`.
   */
  async prepare(spec: LaunchSpec, accel: Accel): Promise<Confined> {
    const uid = await this.uidFor(spec.vmId);
    this.taken.set(spec.vmId, uid);
    try {
      const dir = join(spec.runDir, JAIL_DIR);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { mode: 0o700 });
      await chown(dir, uid, uid);
      const cgroupProcs = this.cgroups ? await this.cgroups.create(spec.vmId, vmmLimits(spec, accel)) : [];
      return { jail: { dir, uid, gid: uid }, cgroupProcs };
    } catch (e) {
      await this.release(spec.vmId);
      throw e;
    }
  }

  /** After the VMM ended: its cgroup removed, its uid free again. */
  async release(vmId: string): Promise<void> {
    this.taken.delete(vmId);
    await this.cgroups?.remove(vmId);
  }

  /**
   * Removes the groups of this instance that no VM in `keep` owns and no process is in;
   * those of VMMs just killed (`killed`) get a moment to empty.
   */
  async removeOrphans(keep: ReadonlySet<string>, killed: ReadonlySet<string>): Promise<string[]> {
    const lines: string[] = [];
    for (const id of (await this.cgroups?.list()) ?? []) {
      if (keep.has(id)) continue;
      // Taken: being launched by this process, unless its VMM was just killed as an orphan
      // (a handle this process detached from): that one is nobody's now.
      if (this.taken.has(id) && !killed.has(id)) continue;
      this.taken.delete(id);
      if (await this.cgroups!.remove(id, killed.has(id) ? 2000 : 0)) lines.push(`removed the orphaned cgroup of ${id}`);
    }
    // Nothing of this instance runs (a --cleanup, or a daemon starting with no VM): its
    // cgroup directories go too, or every daemon home that ever ran would leave one.
    if (keep.size === 0 && this.taken.size === 0) await this.cgroups?.removeInstanceIfEmpty();
    return lines;
  }
}
