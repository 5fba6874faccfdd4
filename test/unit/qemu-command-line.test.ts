import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LaunchSpec } from '../../src/core/ports.js';
import { argvFacts, compatString, kernelCmdline, parseOpts, prefixToMask, qemuArgs, USER_NET_ADDRESS } from '../../src/drivers/qemu/command-line.js';

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
    assert.match(line, /sysctl\.vm\.stat_interval=10/, 'idle guests fold their memory statistics every 10 s, not every second');
    assert.match(line, /tsc=reliable/, 'no clocksource watchdog that a busy host would trip');
  });

  it('uses tcg or kvm as detected, attaches disks in order and escapes commas in paths', () => {
    const tcg = qemuArgs(spec, { binary: 'qemu', accel: 'tcg', tscKhz: null });
    assert.ok(tcg.join(' ').includes('-accel tcg,tb-size=32 -cpu max'), 'TCG with a bounded translation cache');
    assert.ok(tcg.includes('microvm,x-option-roms=off,acpi=off'));
    assert.ok(tcg.includes('id=d0,file=/layers/app.sqfs,format=raw,if=none,readonly=on,werror=report,rerror=report'));
    assert.ok(tcg.includes('id=d1,file=/vols/a,,b.ext4,format=raw,if=none,werror=report,rerror=report'));
    assert.ok(tcg.includes('tap,id=n0,ifname=tap-abc,script=no,downscript=no'));
    assert.ok(tcg.includes('virtio-net-device,netdev=n0,mac=52:55:ac:1e:00:05'));
    const kvm = qemuArgs(spec, { binary: 'qemu', accel: 'kvm', tscKhz: null });
    assert.ok(kvm.join(' ').includes('-accel kvm -cpu host'));
    // A VM that asks for a bigger cache gets it under TCG; KVM has none to size.
    assert.ok(qemuArgs({ ...spec, codeCacheMiB: 64 }, { binary: 'qemu', accel: 'tcg', tscKhz: null }).join(' ').includes('-accel tcg,tb-size=64 -cpu max'));
    assert.ok(qemuArgs({ ...spec, codeCacheMiB: 64 }, { binary: 'qemu', accel: 'kvm', tscKhz: null }).join(' ').includes('-accel kvm -cpu host'));
  });

  it('forwards published ports on user-mode networking with restrict=on', () => {
    const args = qemuArgs({ ...spec, nic: { kind: 'user', mac: '52:00:00:00:00:01', forwards: [{ hostAddr: '127.0.0.1', hostPort: 18080, guestPort: 8080 }] } }, { binary: 'qemu', accel: 'tcg', tscKhz: null });
    assert.ok(args.some((a) => a.startsWith('user,id=n0,restrict=on') && a.includes(',hostfwd=tcp:127.0.0.1:18080-:8080')));
  });

  it('puts guest RAM in a shared file for a VM of its own, a private mapping for a clone', () => {
    const host = { binary: 'qemu', accel: 'tcg' as const, tscKhz: null };
    const own = qemuArgs(spec, host, { memory: { path: '/dev/shm/uig/abc123.ram', shared: true } });
    assert.ok(own.includes('microvm,x-option-roms=off,acpi=off,memory-backend=mem'));
    assert.ok(own.join(' ').includes('-m 256M'), 'ram_size matches the backend');
    assert.ok(own.includes('memory-backend-file,id=mem,size=256M,mem-path=/dev/shm/uig/abc123.ram,share=on'));
    assert.ok(!own.includes('-incoming') && !own.includes('-S'));
    const clone = qemuArgs(spec, host, { memory: { path: '/snaps/a,b/memory', shared: false }, incoming: true });
    assert.ok(clone.includes('memory-backend-file,id=mem,size=256M,mem-path=/snaps/a,,b/memory,share=off'));
    assert.deepEqual(clone.slice(-3), ['-S', '-incoming', 'defer'], 'a restore starts paused, waiting for migrate-incoming');
    const held = qemuArgs(spec, host, { memory: { path: '/dev/shm/uig/abc123.ram', shared: true }, paused: true });
    assert.deepEqual([held.at(-1), held.includes('-incoming')], ['-S', false], 'a cold boot held for its cgroup starts paused, with nothing to load');
    const heldClone = qemuArgs(spec, host, { memory: { path: '/snaps/a,b/memory', shared: false }, incoming: true, paused: true });
    assert.equal(heldClone.filter((a) => a === '-S').length, 1, 'one -S');
    const anon = qemuArgs(spec, host);
    assert.ok(anon.includes('microvm,x-option-roms=off,acpi=off') && !anon.includes('-object'), 'no backend: anonymous RAM (the KVM probe)');
  });

  it('adds the agent channel: a named virtio-serial port on a unix socket in the run directory', () => {
    const args = qemuArgs(spec, { binary: 'qemu', accel: 'tcg', tscKhz: null });
    const line = args.join(' ');
    assert.ok(line.includes('-device virtio-serial-device,max_ports=2 -chardev socket,id=agent,path=/run/vm/agent.sock,server=on,wait=off -device virtserialport,chardev=agent,name=org.uigniter.agent,nr=1'));
    // microvm has 8 virtio-mmio transports: rng, serial, NIC and at most 5 disks.
    const transports = args.filter((a, i) => args[i - 1] === '-device' && /^virtio-(rng|serial|blk|net)-device/.test(a));
    assert.equal(transports.length, 2 + 2 + 1);
  });

  it('uses the user-mode network the driver announces as the guest address', () => {
    const args = qemuArgs({ ...spec, nic: { kind: 'user', mac: '52:00:00:00:00:01', forwards: [] } }, { binary: 'qemu', accel: 'tcg', tscKhz: null });
    assert.deepEqual(USER_NET_ADDRESS, { ip: '10.0.2.15', prefix: 24, gateway: '10.0.2.2', dns: [] });
    assert.ok(args.includes('user,id=n0,restrict=on,net=10.0.2.0/24,host=10.0.2.2'));
  });

  it('reads its own command line back (adopted VMs, orphans)', () => {
    const argv = ['/usr/bin/qemu-system-x86_64', ...qemuArgs(spec, { binary: 'qemu', accel: 'kvm', tscKhz: null }, { memory: { path: '/dev/shm/u,x/abc123.ram', shared: true } })];
    assert.deepEqual(argvFacts(argv), { vmId: 'abc123', runDir: '/run/vm', accel: 'kvm', memory: { path: '/dev/shm/u,x/abc123.ram', shared: true }, hasNic: true, chroot: null });
    const clone = ['qemu-system-x86_64', ...qemuArgs({ ...spec, nic: null }, { binary: 'qemu', accel: 'tcg', tscKhz: null }, { memory: { path: '/s/memory', shared: false }, incoming: true })];
    assert.deepEqual(argvFacts(clone), { vmId: 'abc123', runDir: '/run/vm', accel: 'tcg', memory: { path: '/s/memory', shared: false }, hasNic: false, chroot: null });
    const jailed = ['qemu-system-x86_64', ...qemuArgs(spec, { binary: 'qemu', accel: 'tcg', tscKhz: null }, { jail: { dir: '/run/vm/jail', uid: 1900000007, gid: 1900000007 } })];
    assert.equal(argvFacts(jailed)?.chroot, '/run/vm/jail', 'a confined VM is known by its chroot');
    const at = (flag: string): string | undefined => jailed[jailed.indexOf(flag) + 1];
    assert.deepEqual([at('-runas'), at('-sandbox')], ['1900000007:1900000007', 'on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny']);
    const old = ['nsenter', '--net=/run/netns/uigniter', '--', '/usr/bin/qemu-system-x86_64', ...qemuArgs(spec, { binary: 'qemu', accel: 'tcg', tscKhz: null })];
    assert.equal(argvFacts(old)?.memory, null, 'a VM started before RAM files has anonymous RAM');
    assert.equal(argvFacts(['/usr/bin/qemu-system-x86_64', '-name', 'other,process=other']), null);
    assert.equal(argvFacts(['/bin/sleep', '-name', 'uigniter-abc123,process=x']), null);
    assert.deepEqual([...parseOpts('file,id=a,path=x,,y,flag').props], [['id', 'a'], ['path', 'x,y'], ['flag', 'on']]);
    assert.equal(compatString('7.2.22', 'tcg'), 'qemu 7.2.22 tcg microvm');
  });

  it('turns prefixes into masks', () => {
    assert.equal(prefixToMask(24), '255.255.255.0');
    assert.equal(prefixToMask(30), '255.255.255.252');
    assert.equal(prefixToMask(16), '255.255.0.0');
    assert.equal(prefixToMask(0), '0.0.0.0');
  });
});
