import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ImageManifest } from '../../src/core/models.js';
import type { LaunchSpec, VmmProcess, VmmSnapshot } from '../../src/core/ports.js';
import { Cgroups } from '../../src/drivers/qemu/cgroups.js';
import { QemuVmm } from '../../src/drivers/qemu/qemu-vmm.js';
import { TCG_CODE_CACHE_MIB } from '../../src/drivers/qemu/command-line.js';
import { writeConfigDrive } from '../../src/guest/config-drive.js';
import { ImageStore } from '../../src/images/image-store.js';
import { Paths } from '../../src/util/paths.js';
import { processAlive } from '../../src/util/process.js';
import { cli, freePort, httpGet, makeShellApp, qemuProcesses, removeHome, SHARED_CACHE, tempHome, waitFor } from '../helpers.js';

/**
 * The QEMU driver alone (no daemon) on real guests with user-mode networking: pause and
 * resume, a snapshot of a guest whose RAM is a tmpfs file, two clones restored from it, a
 * snapshot of a clone (its RAM travels in the stream), refused and failing restores, orphan
 * removal; after each, no process, socket or RAM file is left.
 */
describe('QEMU driver: pause, snapshot, restore (real QEMU)', () => {
  const MEM_MIB = 128;
  let home: string;
  let app: string;
  let memDir: string;
  let vmsDir: string;
  let vmm: QemuVmm;
  let images: ImageStore;
  let manifest: ImageManifest;
  const procs: VmmProcess[] = [];

  before(async () => {
    home = await tempHome('uigniter-snap-');
    vmsDir = join(home, 'vms');
    memDir = `/dev/shm/uigniter-test-${process.pid}`;
    // Serves HTTP, names the virtio ports it sees, and ticks on the console 5 times a second.
    app = await makeShellApp(
      [
        'mkdir -p /tmp/www && echo "hello from the guest" > /tmp/www/index.html',
        'for f in /sys/class/virtio-ports/*/name; do echo "virtio port: $(cat $f)"; done',
        'httpd -p 8080 -h /tmp/www',
        'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.2; done',
      ].join('; '),
      { ports: [8080], ready: { http: { port: 8080, path: '/' } } },
    );
    const b = await cli(home, ['image', 'build', app, '--name', 'ticker']);
    assert.equal(b.code, 0, b.stderr);
    images = new ImageStore(new Paths(home, SHARED_CACHE));
    manifest = await images.get('ticker');
    vmm = new QemuVmm({ memDir });
  });

  after(async () => {
    for (const p of procs) await p.kill().catch(() => undefined);
    for (const pid of await qemuProcesses(home)) process.kill(pid, 'SIGKILL');
    // Nothing kept: the instance's cgroup directories go too.
    await vmm.removeOrphans(vmsDir, new Set()).catch(() => undefined);
    await rm(memDir, { recursive: true, force: true });
    await removeHome(home);
    await removeHome(app);
  });

  /** A launch spec of the image in vmsDir/<runName>, forwarding host port `port` to the guest's 8080. */
  const specFor = async (vmId: string, port: number, runName = vmId): Promise<LaunchSpec> => {
    const runDir = join(vmsDir, runName);
    await mkdir(runDir, { recursive: true });
    const config = join(runDir, 'config.img');
    await writeConfigDrive(config, {
      hostname: vmId,
      argv: [...manifest.entrypoint, ...manifest.args],
      env: manifest.env,
      workdir: manifest.workdir,
      layers: manifest.layers.map((l) => l.id),
      volumes: [],
      hosts: [],
      dns: [],
      search: null,
      ready: manifest.ready,
      stopTimeoutMs: 5000,
      time: Date.now() / 1000,
    });
    return {
      vmId,
      hostname: vmId,
      vcpus: 1,
      memMiB: MEM_MIB,
      kernel: images.kernelPath(manifest),
      initrd: images.initrdPath(manifest),
      disks: [...manifest.layers.map((l) => ({ path: images.layerPath(l), readOnly: true })), { path: config, readOnly: true }],
      nic: { kind: 'user', mac: '52:54:00:00:00:01', forwards: [{ hostAddr: '127.0.0.1', hostPort: port, guestPort: 8080 }] },
      address: vmm.userNetworkAddress,
      runDir,
      consoleLog: join(runDir, 'console.log'),
    };
  };

  const consoleOf = (s: LaunchSpec): Promise<string> => readFile(s.consoleLog, 'utf8').catch(() => '');
  const lastTick = async (s: LaunchSpec): Promise<number> => {
    const ticks = [...(await consoleOf(s)).matchAll(/^tick (\d+)/gm)];
    return ticks.length ? Number(ticks.at(-1)![1]) : 0;
  };
  const ticksGoOn = async (s: LaunchSpec): Promise<void> => {
    const from = await lastTick(s);
    await waitFor(async () => (await lastTick(s)) >= from + 2, 20_000, `${s.vmId} to tick on from ${from}`);
  };
  const answers = async (port: number, timeoutMs = 1500): Promise<boolean> => {
    try {
      return (await httpGet(`http://127.0.0.1:${port}/`, timeoutMs)).body.includes('hello from the guest');
    } catch {
      return false;
    }
  };
  const exists = (p: string): Promise<boolean> => stat(p).then(() => true, () => false);
  const ramFiles = async (): Promise<string[]> => (await readdir(memDir).catch(() => [] as string[])).sort();
  /** Nothing of the VM left: no process, no sockets, no RAM file of its own. */
  const assertGone = async (s: LaunchSpec): Promise<void> => {
    assert.deepEqual(await qemuProcesses(`uigniter-${s.vmId},`), [], `no qemu of ${s.vmId}`);
    assert.equal(await exists(join(s.runDir, 'qmp.sock')), false, `no QMP socket of ${s.vmId}`);
    assert.equal(await exists(join(s.runDir, 'agent.sock')), false, `no agent socket of ${s.vmId}`);
    assert.equal(await exists(join(memDir, `${s.vmId}.ram`)), false, `no RAM file of ${s.vmId}`);
  };
  /** Whether the guest init answers the agent protocol (the initrd in use may predate it). */
  const initHasAgent = async (): Promise<boolean> => (await readFile(images.initrdPath(manifest))).includes('org.uigniter.agent');
  const ping = async (channel: Duplex): Promise<string> => {
    channel.setEncoding('utf8');
    const reply = new Promise<string>((resolve, reject) => {
      let buf = '';
      channel.on('data', (c: string) => {
        buf += c;
        if (buf.includes('\n')) resolve(buf.slice(0, buf.indexOf('\n')));
      });
      channel.once('error', reject);
      setTimeout(() => reject(new Error('no answer from the guest agent within 5 s')), 5000).unref();
    });
    channel.write('ping\n');
    return reply;
  };

  let origin: LaunchSpec;
  let originProc: VmmProcess;
  let originPort: number;
  let snap: VmmSnapshot;

  it('launches with its RAM in a tmpfs file and the named agent port; pause stops the guest, resume goes on', async () => {
    originPort = await freePort();
    origin = await specFor('origin', originPort);
    originProc = await vmm.launch(origin);
    procs.push(originProc);
    await waitFor(async () => (await consoleOf(origin)).includes('"event":"ready"'), 60_000, 'the guest to be ready');
    assert.match(await consoleOf(origin), /virtio port: org\.uigniter\.agent/);
    assert.equal((await stat(join(memDir, 'origin.ram'))).size, MEM_MIB * 1024 * 1024);
    assert.ok(await answers(originPort));
    await ticksGoOn(origin);

    await originProc.pause();
    const at = await lastTick(origin);
    assert.equal(await answers(originPort, 1000), false, 'a paused guest does not answer');
    await sleep(500);
    assert.equal(await lastTick(origin), at, 'a paused guest does not tick');
    await originProc.resume();
    await ticksGoOn(origin);
    assert.ok(await answers(originPort));
  });

  it('saves a paused VM (device state plus a sparse copy of its RAM file) and resumes it after', async () => {
    const dir = join(home, 'snap-1');
    await mkdir(dir);
    await assert.rejects(originProc.saveSnapshot(dir), (e: Error & { code?: string }) => e.code === 'failed_precondition' && /paused/.test(e.message));
    await originProc.pause();
    const t0 = performance.now();
    snap = await originProc.saveSnapshot(dir);
    const ms = performance.now() - t0;
    assert.equal(snap.memory, 'file');
    assert.equal(snap.compat, await vmm.compat(origin));
    assert.match(snap.compat, /^qemu \d+\.\d+\.\d+ (tcg|kvm) microvm$/);
    const state = await stat(join(dir, 'state'));
    const memory = await stat(join(dir, 'memory'));
    assert.equal(memory.size, MEM_MIB * 1024 * 1024);
    assert.ok(memory.blocks * 512 < memory.size, 'the memory file is sparse');
    assert.equal(snap.bytes, state.blocks * 512 + memory.blocks * 512);
    console.log(`# snapshot of a ${MEM_MIB} MiB guest in ${ms.toFixed(0)} ms: state ${state.size} B, memory ${(memory.blocks * 512 / 2 ** 20).toFixed(1)} MiB allocated`);
    await assert.rejects(originProc.saveSnapshot(join(home, 'snap-again')), /resume it/);
    // QEMU is in 'postmigrate' now; cont takes the VM (and its disks) back.
    const at = await lastTick(origin);
    await sleep(300);
    assert.equal(await lastTick(origin), at, 'still paused after the snapshot');
    await originProc.resume();
    await ticksGoOn(origin);
    assert.ok(await answers(originPort));
  });

  let clones: { spec: LaunchSpec; proc: VmmProcess; port: number }[] = [];

  it('restores two clones from it: paused with the link cut, then running side by side', async () => {
    for (const vmId of ['clone-1', 'clone-2']) {
      const port = await freePort();
      const spec = await specFor(vmId, port);
      const t0 = performance.now();
      const proc = await vmm.restore(spec, snap);
      procs.push(proc);
      console.log(`# ${vmId} restored (launch to migration completed) in ${(performance.now() - t0).toFixed(0)} ms`);
      clones.push({ spec, proc, port });
      // RAM: the snapshot's file mapped privately; no RAM file of its own.
      assert.equal(await exists(join(memDir, `${vmId}.ram`)), false);
      await sleep(300);
      assert.equal(await lastTick(spec), 0, 'a restored clone stays paused');
    }
    for (const c of clones) {
      await c.proc.resume();
      await ticksGoOn(c.spec);
      assert.equal(await answers(c.port, 1000), false, 'the link is cut until setLink(true)');
      await c.proc.setLink(true);
      await waitFor(() => answers(c.port), 30_000, `${c.spec.vmId} to answer HTTP`);
    }
    // The clones go on from the snapshot's tick count, not from 1.
    assert.doesNotMatch(await consoleOf(clones[0]!.spec), /^tick 1\r?$/m);
    // The origin still runs on its own.
    await ticksGoOn(origin);
    assert.ok(await answers(originPort));
  });

  it("tells how far its VMM may still grow: under TCG a clone's translation cache holds some code and has room left", async () => {
    const bound = TCG_CODE_CACHE_MIB * 1024 * 1024;
    for (const c of clones) {
      const room = await c.proc.growthBytes();
      assert.ok(room !== null, 'a running VMM is read');
      if (snap.compat.includes(' kvm ')) assert.equal(room, 0, 'KVM has no translation cache');
      // The cache starts empty at the restore and has since run the guest's resume and HTTP
      // answers: less room than the whole bound (which is also what an unfound cache counts).
      else assert.ok(room > 0 && room < bound, `room ${room} of ${bound}`);
      // QEMU's own account (info jit): the same bound, some code, and one flush: the one QEMU
      // makes when it loads a VM's state (translations of the old memory are stale), none
      // from filling up since.
      const cache = await c.proc.codeCache();
      assert.equal(cache?.boundMiB, TCG_CODE_CACHE_MIB, JSON.stringify(cache));
      assert.ok(cache.usedMiB > 0 && cache.usedMiB < TCG_CODE_CACHE_MIB && cache.flushes === 1, JSON.stringify(cache));
    }
  });

  it('opens the agent channel of a clone', async () => {
    const channel = await clones[0]!.proc.openAgent();
    try {
      await assert.rejects(clones[0]!.proc.openAgent(), /already open/);
      assert.ok(await initHasAgent(), "the image's init has the guest agent");
      assert.equal(await ping(channel), 'ok pong', 'the guest agent answers through the channel');
    } finally {
      channel.destroy();
    }
  });

  it("saves a clone (private RAM: a 'stream' snapshot) and restores it into a fresh RAM file", async () => {
    const c = clones[1]!;
    const dir = join(home, 'snap-2');
    await mkdir(dir);
    await c.proc.pause();
    const s2 = await c.proc.saveSnapshot(dir);
    assert.equal(s2.memory, 'stream');
    assert.equal(await exists(join(dir, 'memory')), false);
    await c.proc.resume();
    const port = await freePort();
    const spec = await specFor('clone-3', port);
    const proc = await vmm.restore(spec, s2);
    procs.push(proc);
    const ram = await stat(join(memDir, 'clone-3.ram'));
    assert.equal(ram.size, MEM_MIB * 1024 * 1024);
    assert.ok(ram.blocks * 512 < ram.size / 2, `the zero pages the load touched were given back (${ram.blocks * 512} bytes allocated)`);
    await proc.resume();
    await proc.setLink(true);
    await ticksGoOn(spec);
    await waitFor(() => answers(port), 30_000, 'clone-3 to answer HTTP');
    // Its RAM is a shared file again: its own snapshot is a 'file' one.
    await proc.pause();
    const dir3 = join(home, 'snap-3');
    await mkdir(dir3);
    assert.equal((await proc.saveSnapshot(dir3)).memory, 'file');
    await proc.kill();
    await assertGone(spec);
  });

  it('refuses a snapshot of another QEMU; a failing load or launch leaves nothing behind', async () => {
    const wrong = await specFor('wrong-compat', await freePort());
    await assert.rejects(vmm.restore(wrong, { ...snap, compat: 'qemu 0.0.1 tcg microvm' }), (e: Error & { code?: string }) => e.code === 'failed_precondition' && /qemu 0\.0\.1/.test(e.message));
    await assertGone(wrong);
    // A 'stream' snapshot into a VM of another memory size: QEMU itself fails the load and exits.
    const small = { ...(await specFor('wrong-size', await freePort())), memMiB: MEM_MIB / 2 };
    await assert.rejects(vmm.restore(small, { ...snap, dir: join(home, 'snap-2'), memory: 'stream' }), (e: Error & { code?: string }) => e.code === 'vmm_failed' && /mismatch/i.test(e.message));
    await assertGone(small);
    // A 'file' snapshot: the driver checks the size itself.
    await assert.rejects(vmm.restore(small, snap), /MiB of memory/);
    await assertGone(small);
    // A launch QEMU refuses at start.
    const broken = { ...(await specFor('broken', await freePort())), kernel: join(home, 'no-such-kernel') };
    await assert.rejects(vmm.launch(broken), (e: Error & { code?: string }) => e.code === 'vmm_failed' && /qemu exited at start/.test(e.message));
    await assertGone(broken);
  });

  it('removes orphans: VMs under vmsDir/<id> not kept, and RAM files no VM uses', async () => {
    const orphan = await specFor('orphan', await freePort());
    const kept = await specFor('kept', await freePort());
    const foreground = await specFor('fgvm', await freePort(), 'fg-fgvm');
    const o = await vmm.launch(orphan);
    const k = await vmm.launch(kept);
    const f = await vmm.launch(foreground);
    procs.push(k, f);
    o.detach(); // as a daemon that left it running
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(memDir, 'ghost.ram'), 'left by a crash');
    // The orphan's cgroup, as its (detached) launch made it: confined here, as root.
    const cgroups = await Cgroups.detect(basename(memDir));
    assert.ok(typeof cgroups !== 'string', String(cgroups));
    for (const dir of cgroups.dirs('orphan')) assert.ok(await exists(dir), `${dir} exists before`);
    const lines = await vmm.removeOrphans(vmsDir, new Set(['origin', 'clone-1', 'clone-2', 'kept']));
    assert.ok(lines.some((l) => l.includes('orphan') && l.includes(String(o.pid))), lines.join('\n'));
    assert.ok(lines.some((l) => l.includes('ghost.ram')), lines.join('\n'));
    assert.ok(lines.includes('removed the orphaned cgroup of orphan'), lines.join('\n'));
    assert.equal(lines.length, 4, lines.join('\n'));
    for (const dir of cgroups.dirs('orphan')) assert.equal(await exists(dir), false, `${dir} removed`);
    for (const dir of cgroups.dirs('kept')) assert.ok(await exists(dir), `${dir}: a kept VM's cgroup stays`);
    assert.equal(processAlive(o.pid), false);
    await assertGone(orphan);
    assert.equal(await exists(join(memDir, 'ghost.ram')), false);
    assert.ok(processAlive(k.pid) && processAlive(f.pid), 'kept and foreground VMs run on');
    assert.ok(await exists(join(memDir, 'kept.ram')));
    assert.ok(await exists(join(memDir, 'fgvm.ram')));
    await k.kill();
    await f.kill();
    await assertGone(kept);
    await assertGone(foreground);
  });

  it('adopts a running VM (daemon restart): its RAM is still known to be a shared file', async () => {
    originProc.detach();
    const adopted = await vmm.adopt('origin', originProc.pid, origin.runDir);
    assert.ok(adopted, 'adopted');
    assert.equal(await vmm.adopt('someone-else', originProc.pid, origin.runDir), null, 'not a VM of another id');
    originProc = adopted;
    procs.push(adopted);
    await ticksGoOn(origin);
    await adopted.pause();
    const dir = join(home, 'snap-4');
    await mkdir(dir);
    const s4 = await adopted.saveSnapshot(dir);
    assert.deepEqual([s4.memory, s4.compat], ['file', snap.compat]);
    await adopted.resume();
    await ticksGoOn(origin);
    // The adopted VMM's cache bound comes from its own command line (the handle has no spec).
    const cache = await adopted.codeCache();
    assert.equal(cache?.boundMiB, TCG_CODE_CACHE_MIB, JSON.stringify(cache));
    // Its boot filled most of the cache: what is left is far less than the bound, which is
    // what an unfound cache would count.
    assert.ok(cache.usedMiB > TCG_CODE_CACHE_MIB / 2, `the boot's code: ${JSON.stringify(cache)}`);
    const room = await adopted.growthBytes();
    assert.ok(room !== null && room >= 0 && room < (TCG_CODE_CACHE_MIB / 2) * 1024 * 1024, `room ${room}`);
  });

  it('kills everything: no process, socket or RAM file is left', async () => {
    await originProc.kill();
    for (const c of clones) await c.proc.kill();
    await assertGone(origin);
    for (const c of clones) await assertGone(c.spec);
    assert.deepEqual(await ramFiles(), []);
    assert.deepEqual(await qemuProcesses(home), []);
    assert.equal(await originProc.growthBytes(), null, 'a VMM that is gone has no figure');
    clones = [];
  });
});
