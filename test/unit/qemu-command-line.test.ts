import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LaunchSpec } from '../../src/core/ports.js';
import { kernelCmdline, prefixToMask, qemuArgs } from '../../src/drivers/qemu/command-line.js';

const spec: LaunchSpec = {
  vmId: 'abc123',
  hostname: 'web-1',
  vcpus: 2,
  memMiB: 256,
  kernel: '/k/vmlinux',
  initrd: '/k/initrd.cpio',
  disks: [
    { path: '/layers/app.sqfs', readOnly: true },
    { path: '/vols/a,b.ext4', readOnly: false },
  ],
  nic: { kind: 'tap', tap: 'tap-abc', mac: '52:55:ac:1e:00:05', netns: 'uigniter' },
  address: { ip: '172.30.0.5', prefix: 24, gateway: '172.30.0.1', dns: ['172.30.255.253'] },
  runDir: '/run/vm',
  consoleLog: '/run/vm/console.log',
};

describe('QEMU command line', () => {
  it('boots microvm without ACPI, with the TSC frequency and the guest address on the kernel line', () => {
    const line = kernelCmdline(spec, { binary: 'qemu', accel: 'tcg', tscKhz: 2596130 });
    assert.match(line, /console=ttyS0/);
    assert.match(line, /tsc_early_khz=2596130/);
    assert.match(line, /ip=172\.30\.0\.5::172\.30\.0\.1:255\.255\.255\.0:web-1:eth0:off:172\.30\.255\.253( |$)/);
    assert.match(line, /reboot=k panic=1/);
  });

  it('uses tcg or kvm as detected, attaches disks in order and escapes commas in paths', () => {
    const tcg = qemuArgs(spec, { binary: 'qemu', accel: 'tcg', tscKhz: null });
    assert.ok(tcg.join(' ').includes('-accel tcg -cpu max'));
    assert.ok(tcg.includes('microvm,x-option-roms=off,acpi=off'));
    assert.ok(tcg.includes('id=d0,file=/layers/app.sqfs,format=raw,if=none,readonly=on'));
    assert.ok(tcg.includes('id=d1,file=/vols/a,,b.ext4,format=raw,if=none'));
    assert.ok(tcg.includes('tap,id=n0,ifname=tap-abc,script=no,downscript=no'));
    assert.ok(tcg.includes('virtio-net-device,netdev=n0,mac=52:55:ac:1e:00:05'));
    const kvm = qemuArgs(spec, { binary: 'qemu', accel: 'kvm', tscKhz: null });
    assert.ok(kvm.join(' ').includes('-accel kvm -cpu host'));
  });

  it('forwards published ports on user-mode networking with restrict=on', () => {
    const args = qemuArgs({ ...spec, nic: { kind: 'user', mac: '52:00:00:00:00:01', forwards: [{ hostAddr: '127.0.0.1', hostPort: 18080, guestPort: 8080 }] } }, { binary: 'qemu', accel: 'tcg', tscKhz: null });
    assert.ok(args.some((a) => a.startsWith('user,id=n0,restrict=on') && a.includes(',hostfwd=tcp:127.0.0.1:18080-:8080')));
  });

  it('turns prefixes into masks', () => {
    assert.equal(prefixToMask(24), '255.255.255.0');
    assert.equal(prefixToMask(30), '255.255.255.252');
    assert.equal(prefixToMask(16), '255.255.0.0');
    assert.equal(prefixToMask(0), '0.0.0.0');
  });
});
