import type { GuestAddress, LaunchSpec } from '../../core/ports.js';
import { AGENT_PORT_NAME } from '../../guest/agent-protocol.js';

export type Accel = 'kvm' | 'tcg';

export interface QemuHost {
  binary: string;
  accel: Accel;
  tscKhz: number | null;
  /** `major.minor.micro` of the binary, as QMP's query-version reports it. */
  version?: string;
}

export const QMP_SOCKET = 'qmp.sock';
export const AGENT_SOCKET = 'agent.sock';
export const PID_FILE = 'qemu.pid';
export const VMM_LOG = 'qemu.log';
/** The id of the NIC's netdev, for QMP set_link. */
export const NETDEV_ID = 'n0';

/**
 * What QEMU's user-mode networking (slirp) gives a guest with the netdev line below:
 * `net=10.0.2.0/24,host=10.0.2.2` and the first DHCP address, which the guest takes
 * statically from the kernel's ip= instead. restrict=on: no DNS or outside world.
 */
export const USER_NET_ADDRESS: GuestAddress = { ip: '10.0.2.15', prefix: 24, gateway: '10.0.2.2', dns: [] };
const USER_NET = `net=10.0.2.0/${USER_NET_ADDRESS.prefix},host=${USER_NET_ADDRESS.gateway}`;

/**
 * Where the guest's RAM lives. A file (on a tmpfs) lets a snapshot copy it: `shared` maps
 * it MAP_SHARED (a VM of its own, whose RAM is the file), otherwise MAP_PRIVATE (a clone
 * restored from a snapshot's memory file: its pages are shared with every other clone
 * until written, copy-on-write).
 */
export interface GuestMemory {
  path: string;
  shared: boolean;
}

/**
 * Where and as whom a confined QEMU runs: it opens every file of its command line (disks,
 * RAM file, tap, sockets, console, pid file) as root, then chroots into `dir`, takes
 * uid:gid and drops every capability (see confinement.ts).
 */
/**
 * QEMU's own seccomp filter: no obsolete calls, no fork/exec, no scheduler or priority
 * changes; loading it sets NoNewPrivs. elevateprivileges=allow: QEMU 7.2 installs the
 * filter before its own -runas, and both deny and children kill it with SIGSYS at that
 * setgid (audit: syscall=106). Once -runas dropped root QEMU holds no capabilities, so
 * set*id can only move among its own ids: the filter's rule adds nothing after that.
 */
export const SANDBOX = 'on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny';

export interface VmmJail {
  dir: string;
  uid: number;
  gid: number;
}

/**
 * TCG's translation cache, MiB. QEMU 7.2 reserves 1 GiB and fills it as the guest runs new
 * code: a hello-app VM held 106 MiB of anonymous memory after boot, most of it this cache.
 * Measured here (4 idle VMs of 128 MiB, boot to ready / first request / PSS): 1024: 2.3-2.6 s,
 * 40-60 ms, 203 MiB; 64: 2.4-2.7 s, 40 ms, 185 MiB; 32: 2.5-2.7 s, 40-90 ms, 149 MiB;
 * 16: 4.3-4.9 s, 140-220 ms, 132 MiB (the cache thrashes). 32 is twice where it thrashes
 * for an idle app; a busy one needs more, and asks (a VM's `codeCacheMiB`): the industrial
 * example's six VMs used 127% of a core at 32 (loop p99 826 ms), 87% at 64 and 82% at 128.
 */
export const TCG_CODE_CACHE_MIB = 32;

export interface QemuArgsOptions {
  /** Confined: chroot, unprivileged uid, seccomp sandbox. */
  jail?: VmmJail;
  /** Guest RAM in a file; anonymous memory when absent (the KVM probe). */
  memory?: GuestMemory;
  /** Start paused, waiting for `migrate-incoming` (a restore). */
  incoming?: boolean;
  /** Start paused (-S) until the driver sends `cont` (a cold boot whose VMM joins its cgroup first). */
  paused?: boolean;
}

/** The guest kernel's command line. */
export function kernelCmdline(spec: LaunchSpec, host: QemuHost): string {
  const args = [
    'console=ttyS0',
    '8250.nr_uarts=1',
    'reboot=k',
    'panic=1',
    // No PS/2 mouse, no multiplexer, no PnP probing: the i8042 only carries Ctrl-Alt-Del.
    'i8042.noaux',
    'i8042.nomux',
    'i8042.nopnp',
    'i8042.dumbkbd',
    spec.verbose ? 'loglevel=7' : 'quiet',
    // The per-CPU memory statistics are folded every second by default, a wake-up an idle
    // guest does not need: guest timer interrupts 5.2/s -> 4.4/s with 10 s (Linux >= 5.8
    // takes sysctls on the command line).
    'sysctl.vm.stat_interval=10',
    // The guest's TSC follows the host's clock (TCG derives it from QEMU's virtual clock;
    // KVM's is the host's invariant TSC). Without this the boot-time clocksource watchdog
    // checks it against jiffies, whose ticks arrive late when the host is busy: 14 of 16
    // guests booted 8 at a time marked it unstable and fell back to refined-jiffies, which
    // cannot stop the tick, so each idle VM then took 100 timer interrupts a second (3-4%
    // of a core instead of 0.1-0.5%).
    'tsc=reliable',
  ];
  if (host.tscKhz) args.push(`tsc_early_khz=${host.tscKhz}`);
  if (spec.address) {
    const a = spec.address;
    const dns = a.dns.slice(0, 2);
    args.push(`ip=${a.ip}::${a.gateway}:${prefixToMask(a.prefix)}:${spec.hostname}:eth0:off${dns.length ? `:${dns.join(':')}` : ''}`);
  }
  return args.join(' ');
}

export function prefixToMask(prefix: number): string {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (bits >>> s) & 255).join('.');
}

/**
 * qemu-system-x86_64 -M microvm arguments. acpi=off: with ACPI on, 3 of 8 boots hung under
 * TCG here, and without it QEMU describes the virtio-mmio devices on the kernel command
 * line itself, as Firecracker does. The RTC stays on: without it the guest kernel waits a
 * second for a CMOS clock that never answers (our kernel has no RTC driver, which would
 * also fight the fifth virtio-mmio device for IRQ 8; it reads the clock once at boot).
 * An i8042 carries Ctrl-Alt-Del, the stop request Firecracker also uses.
 *
 * A restore must recreate the same devices in the same order (the migration stream names
 * them by their place on the virtio-mmio buses), so launch and restore share this list.
 */
export function qemuArgs(spec: LaunchSpec, host: QemuHost, opts: QemuArgsOptions = {}): string[] {
  const run = (f: string): string => `${spec.runDir}/${f}`;
  const mem = opts.memory;
  const args = [
    '-name', `uigniter-${spec.vmId},process=uigniter-${spec.vmId}`,
    '-M', `microvm,x-option-roms=off,acpi=off${mem ? ',memory-backend=mem' : ''}`,
    ...(host.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', `tcg,tb-size=${spec.codeCacheMiB ?? TCG_CODE_CACHE_MIB}`, '-cpu', 'max']),
    '-smp', String(spec.vcpus),
    '-m', `${spec.memMiB}M`,
  ];
  if (mem) args.push('-object', memoryBackend(spec.memMiB, mem));
  args.push(
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-kernel', spec.kernel,
    '-initrd', spec.initrd,
    '-append', kernelCmdline(spec, host),
    '-chardev', `file,id=con,path=${escapeOpt(spec.consoleLog)},append=on`,
    '-serial', 'chardev:con',
    '-qmp', `unix:${escapeOpt(run(QMP_SOCKET))},server=on,wait=off`,
    '-pidfile', run(PID_FILE),
    '-device', 'i8042',
    '-device', 'virtio-rng-device',
    // The agent channel: one virtio-serial transport with a single named port (nr=0 is
    // reserved for a console). A unix socket on the host, served by QEMU; wait=off so the
    // VM runs with nobody connected.
    '-device', 'virtio-serial-device,max_ports=2',
    '-chardev', `socket,id=agent,path=${escapeOpt(run(AGENT_SOCKET))},server=on,wait=off`,
    '-device', `virtserialport,chardev=agent,name=${AGENT_PORT_NAME},nr=1`,
  );
  spec.disks.forEach((d, i) => {
    const ro = d.readOnly ? ',readonly=on' : '';
    // An I/O error (the host's disk full under a sparse volume) reaches the guest as EIO:
    // QEMU's default, pausing the whole VM, looked like a silent hang from outside.
    args.push('-drive', `id=d${i},file=${escapeOpt(d.path)},format=raw,if=none${ro},werror=report,rerror=report`);
    args.push('-device', `virtio-blk-device,drive=d${i}`);
  });
  const nic = spec.nic;
  if (nic?.kind === 'tap') {
    args.push('-netdev', `tap,id=${NETDEV_ID},ifname=${nic.tap},script=no,downscript=no`);
    args.push('-device', `virtio-net-device,netdev=${NETDEV_ID},mac=${nic.mac}`);
  } else if (nic?.kind === 'user') {
    // restrict=on: the guest cannot open connections out of user-mode networking, so it
    // cannot reach the host's services; published ports still come in.
    const fwd = nic.forwards.map((f) => `,hostfwd=tcp:${f.hostAddr}:${f.hostPort}-:${f.guestPort}`).join('');
    args.push('-netdev', `user,id=${NETDEV_ID},restrict=on,${USER_NET}${fwd}`);
    args.push('-device', `virtio-net-device,netdev=${NETDEV_ID},mac=${nic.mac}`);
  }
  if (opts.jail) {
    // QEMU chroots and changes uid just before the VM starts, after it opened everything
    // above. -sandbox installs its seccomp filter (and with it NoNewPrivs) at start.
    args.push('-chroot', opts.jail.dir, '-runas', `${opts.jail.uid}:${opts.jail.gid}`, '-sandbox', SANDBOX);
  }
  if (opts.incoming) {
    // -S: stay paused after the load whatever state the snapshot was saved in; the
    // migration source (a file) is given later, after the migration parameters are set.
    args.push('-S', '-incoming', 'defer');
  } else if (opts.paused) {
    args.push('-S');
  }
  return args;
}

/**
 * The RAM backend. share=on: MAP_SHARED on a tmpfs file, so the file is the RAM and a
 * snapshot copies it. share=off: MAP_PRIVATE on a snapshot's memory file: the file is
 * never written, the pages stay in the page cache shared by every clone until a clone
 * writes one (that page becomes its own anonymous memory).
 */
export function memoryBackend(memMiB: number, mem: GuestMemory): string {
  return `memory-backend-file,id=mem,size=${memMiB}M,mem-path=${escapeOpt(mem.path)},share=${mem.shared ? 'on' : 'off'}`;
}

/** QEMU option values escape ',' by doubling it. */
export function escapeOpt(v: string): string {
  return v.replace(/,/g, ',,');
}

/** Splits a QEMU option string (`a=b,c=d`, with ',,' an escaped comma) into its parts. */
export function parseOpts(s: string): { head: string; props: Map<string, string> } {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === ',') {
      if (s[i + 1] === ',') {
        cur += ',';
        i++;
      } else {
        parts.push(cur);
        cur = '';
      }
    } else {
      cur += s[i];
    }
  }
  parts.push(cur);
  const props = new Map<string, string>();
  let head = '';
  parts.forEach((p, i) => {
    const eq = p.indexOf('=');
    if (eq < 0 && i === 0) head = p;
    else if (eq < 0) props.set(p, 'on');
    else props.set(p.slice(0, eq), p.slice(eq + 1));
  });
  return { head, props };
}

/** What a running QEMU's argv says about it (for adopted VMs and orphan removal). */
export interface QemuArgvFacts {
  vmId: string;
  runDir: string | null;
  accel: Accel;
  memory: GuestMemory | null;
  hasNic: boolean;
  /** The chroot of a confined QEMU (host path), null when unconfined. */
  chroot: string | null;
}

/** Reads our own command line back; null when argv is not a QEMU of this driver. */
export function argvFacts(argv: string[]): QemuArgvFacts | null {
  if (!argv.some((a) => /(^|\/)qemu-system-/.test(a))) return null;
  const after = (flag: string): string[] => argv.flatMap((a, i) => (a === flag && i + 1 < argv.length ? [argv[i + 1]!] : []));
  const name = /^uigniter-([A-Za-z0-9_-]+),/.exec(after('-name')[0] ?? '');
  if (!name) return null;
  const pidfile = after('-pidfile')[0];
  const runDir = pidfile?.endsWith(`/${PID_FILE}`) ? pidfile.slice(0, -PID_FILE.length - 1) : null;
  let memory: GuestMemory | null = null;
  for (const o of after('-object')) {
    const { head, props } = parseOpts(o);
    if (head === 'memory-backend-file' && props.get('id') === 'mem' && props.has('mem-path')) {
      memory = { path: props.get('mem-path')!, shared: props.get('share') === 'on' };
    }
  }
  return {
    vmId: name[1]!,
    runDir,
    accel: after('-accel')[0] === 'kvm' ? 'kvm' : 'tcg',
    memory,
    hasNic: after('-netdev').length > 0,
    chroot: after('-chroot')[0] ?? null,
  };
}

/** What snapshots of this QEMU must match to restore on another. */
export function compatString(version: string, accel: Accel): string {
  return `qemu ${version} ${accel} microvm`;
}
