import type { LaunchSpec } from '../../core/ports.js';

export type Accel = 'kvm' | 'tcg';

export interface QemuHost {
  binary: string;
  accel: Accel;
  tscKhz: number | null;
}

export const QMP_SOCKET = 'qmp.sock';
export const PID_FILE = 'qemu.pid';
export const VMM_LOG = 'qemu.log';

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
 */
export function qemuArgs(spec: LaunchSpec, host: QemuHost): string[] {
  const run = (f: string): string => `${spec.runDir}/${f}`;
  const args = [
    '-name', `uigniter-${spec.vmId},process=uigniter-${spec.vmId}`,
    '-M', 'microvm,x-option-roms=off,acpi=off',
    ...(host.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg', '-cpu', 'max']),
    '-smp', String(spec.vcpus),
    '-m', `${spec.memMiB}M`,
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-kernel', spec.kernel,
    '-initrd', spec.initrd,
    '-append', kernelCmdline(spec, host),
    '-chardev', `file,id=con,path=${spec.consoleLog},append=on`,
    '-serial', 'chardev:con',
    '-qmp', `unix:${run(QMP_SOCKET)},server=on,wait=off`,
    '-pidfile', run(PID_FILE),
    '-device', 'i8042',
    '-device', 'virtio-rng-device',
  ];
  spec.disks.forEach((d, i) => {
    const ro = d.readOnly ? ',readonly=on' : '';
    args.push('-drive', `id=d${i},file=${escapeOpt(d.path)},format=raw,if=none${ro}`);
    args.push('-device', `virtio-blk-device,drive=d${i}`);
  });
  const nic = spec.nic;
  if (nic?.kind === 'tap') {
    args.push('-netdev', `tap,id=n0,ifname=${nic.tap},script=no,downscript=no`);
    args.push('-device', `virtio-net-device,netdev=n0,mac=${nic.mac}`);
  } else if (nic?.kind === 'user') {
    // restrict=on: the guest cannot open connections out of user-mode networking, so it
    // cannot reach the host's services; published ports still come in.
    const fwd = nic.forwards.map((f) => `,hostfwd=tcp:${f.hostAddr}:${f.hostPort}-:${f.guestPort}`).join('');
    args.push('-netdev', `user,id=n0,restrict=on,net=10.0.2.0/24,host=10.0.2.2${fwd}`);
    args.push('-device', `virtio-net-device,netdev=n0,mac=${nic.mac}`);
  }
  return args;
}

/** QEMU option values escape ',' by doubling it. */
function escapeOpt(v: string): string {
  return v.replace(/,/g, ',,');
}

