import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** What one VMM may use: guest RAM plus the VMM's own overhead, vCPUs plus the VMM's threads. */
export interface CgroupLimits {
  memoryBytes: number;
  cpuQuotaUs: number;
  cpuPeriodUs: number;
}

/**
 * The cgroups of VMMs. A VM's group is `<hierarchy>/uigniter/<instance>/<vmId>` (one per
 * daemon home: `instance` is the name of its RAM directory), at the root of the hierarchy
 * rather than under the daemon's own group: a VM outlives its daemon (a restart adopts it),
 * and a service manager kills the whole group of a service it restarts; cgroup v2 also
 * refuses controllers below a group that holds processes (the daemon's).
 *
 * v2 (one hierarchy with the memory and cpu controllers): memory.max, cpu.max. v1 (hybrid
 * hosts, whose cgroup2 mount carries no controllers): memory.limit_in_bytes in the memory
 * hierarchy, cpu.cfs_quota_us/cpu.cfs_period_us in the cpu one, one directory in each.
 */
export class Cgroups {
  private constructor(
    readonly version: 1 | 2,
    /** v2: the one mount; v1: the memory mount, then the cpu mount. */
    private readonly mounts: string[],
    private readonly instance: string,
  ) {}

  /** The host's cgroups, or null (with the reason) when neither v2 nor v1 has memory and cpu. */
  static async detect(instance: string): Promise<Cgroups | string> {
    const info = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
    const mounts = info.split('\n').flatMap((line) => {
      const [pre, post] = line.split(' - ');
      if (!pre || !post) return [];
      const [fstype, , superOpts] = post.split(' ');
      const point = pre.split(' ')[4];
      return point && (fstype === 'cgroup' || fstype === 'cgroup2') ? [{ fstype, point, opts: (superOpts ?? '').split(',') }] : [];
    });
    for (const m of mounts.filter((x) => x.fstype === 'cgroup2')) {
      const ctl = (await readFile(join(m.point, 'cgroup.controllers'), 'utf8').catch(() => '')).trim().split(/\s+/);
      if (ctl.includes('memory') && ctl.includes('cpu')) return new Cgroups(2, [m.point], instance);
    }
    const v1 = (c: string): string | undefined => mounts.find((x) => x.fstype === 'cgroup' && x.opts.includes(c))?.point;
    const memory = v1('memory');
    const cpu = v1('cpu');
    if (memory && cpu) return new Cgroups(1, [memory, cpu], instance);
    return 'no cgroup v2 hierarchy with the memory and cpu controllers, and no v1 memory and cpu hierarchies';
  }

  /** The directories holding this instance's VM groups. */
  private parents(): string[] {
    return this.mounts.map((m) => join(m, 'uigniter', this.instance));
  }

  /** A VM's group directories (one for v2, memory then cpu for v1). */
  dirs(vmId: string): string[] {
    return this.parents().map((p) => join(p, vmId));
  }

  /**
   * Creates the VM's group with its limits; returns the `cgroup.procs` files a process
   * writes its pid to to join it. A group left by a crash is reused (its limits rewritten).
   */
  async create(vmId: string, limits: CgroupLimits): Promise<string[]> {
    const [first, second] = this.dirs(vmId);
    if (this.version === 2) {
      const root = this.mounts[0]!;
      // Controllers are enabled level by level down to the VM's parent.
      for (const d of [root, join(root, 'uigniter'), this.parents()[0]!]) {
        await mkdir(d, { recursive: true });
        await writeFile(join(d, 'cgroup.subtree_control'), '+memory +cpu');
      }
      await mkdir(first!, { recursive: true });
      await writeFile(join(first!, 'memory.max'), String(limits.memoryBytes));
      await writeFile(join(first!, 'cpu.max'), `${limits.cpuQuotaUs} ${limits.cpuPeriodUs}`);
      return [join(first!, 'cgroup.procs')];
    }
    await mkdir(first!, { recursive: true });
    await mkdir(second!, { recursive: true });
    await writeFile(join(first!, 'memory.limit_in_bytes'), String(limits.memoryBytes));
    await writeFile(join(second!, 'cpu.cfs_period_us'), String(limits.cpuPeriodUs));
    await writeFile(join(second!, 'cpu.cfs_quota_us'), String(limits.cpuQuotaUs));
    return [join(first!, 'cgroup.procs'), join(second!, 'cgroup.procs')];
  }

  /**
   * Removes a VM's group. Only an empty group can be removed (rmdir fails while a process
   * is in it), so this never takes a running VMM's group; a group just left by an ended
   * process may still count it for a moment, hence the retries.
   */
  async remove(vmId: string, waitMs = 2000): Promise<boolean> {
    const deadline = Date.now() + waitMs;
    let all = true;
    for (const d of this.dirs(vmId)) {
      for (;;) {
        const err = await rmdir(d).then(() => null, (e: NodeJS.ErrnoException) => e.code ?? 'error');
        if (err === null || err === 'ENOENT') break;
        if (err !== 'EBUSY' || Date.now() > deadline) {
          all = false;
          break;
        }
        await sleep(20);
      }
    }
    return all;
  }

  /**
   * Removes this instance's directories, and the shared `uigniter` one, where they hold no
   * group any more (rmdir refuses a directory that still has one: nothing else is touched).
   */
  async removeInstanceIfEmpty(): Promise<void> {
    for (const p of this.parents()) {
      await rmdir(p).catch(() => undefined);
      await rmdir(dirname(p)).catch(() => undefined);
    }
  }

  /** The VM ids that have a group of this instance. */
  async list(): Promise<string[]> {
    const names = new Set<string>();
    for (const p of this.parents()) {
      for (const e of await readdir(p, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) names.add(e.name);
    }
    return [...names];
  }
}
