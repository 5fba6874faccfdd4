import assert from 'node:assert/strict';
import { readdir, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiError, type VmView } from '../../src/client/client.js';
import { STEP_NAMES } from '../../src/core/plans/boot-plans.js';
import { CONFIG_DRIVE } from '../../src/core/guest-boot.js';
import { Paths } from '../../src/util/paths.js';
import { buildFixture, dnsAnswer, startTestDaemon, type TestDaemon } from '../daemon-harness.js';
import { FIXTURES, freePort, listFiles, makeShellApp, qemuProcesses, removeHome, waitFor } from '../helpers.js';

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** The guest RAM files (QEMU's memory backend) the daemon of this home holds. */
async function ramFiles(d: TestDaemon): Promise<string[]> {
  return (await readdir(new Paths(d.home).memory).catch(() => [])).filter((f) => f.endsWith('.ram'));
}

/**
 * Everything a VM can leave behind: none of it may remain after a failed create. `names`
 * are the VM names the test used: the daemon's DNS must answer that they do not exist
 * (NXDOMAIN, not silence: a DNS that is not listening would look the same as one that forgot).
 */
async function assertNothingLeft(d: TestDaemon, port: number, what: string, names: string[]): Promise<void> {
  assert.deepEqual(await d.client.list(), [], `${what}: no VM record`);
  assert.deepEqual(d.leases(), [], `${what}: no IP lease`);
  assert.deepEqual(await d.taps(), [], `${what}: no tap`);
  assert.deepEqual(await qemuProcesses(d.home), [], `${what}: no QEMU`);
  assert.deepEqual(await ramFiles(d), [], `${what}: no guest RAM file`);
  assert.deepEqual(await readdir(join(d.home, 'vms')), [], `${what}: no VM directory (config drive, sockets, logs)`);
  assert.deepEqual(await readdir(join(d.home, 'volumes')), [], `${what}: no volume created for it`);
  assert.deepEqual((await d.client.volumes()).map((v) => v.name), [], `${what}: no volume record`);
  assert.equal(await listening(port), false, `${what}: its published port is closed`);
  for (const name of names) assert.equal(await dnsAnswer(d, name), 'ENOTFOUND', `${what}: the daemon's DNS has no name ${name}`);
}

/** The index of a step in the cold plan: steps from launch-vmm on ran with the VM booting. */
const LAUNCHED_AT = STEP_NAMES.cold.indexOf('launch-vmm');

describe('failure injection: every create step fails in turn, nothing is left behind', () => {
  let d: TestDaemon;
  let port: number;
  before(async () => {
    d = await startTestDaemon();
    await buildFixture(d.home, join(FIXTURES, 'hello'), 'hello');
    port = await freePort();
  });
  after(async () => {
    await d?.destroy();
  });

  it('the checks below can see each resource: a running VM has all of them', async () => {
    // A control: every probe used after a failure finds the thing while the VM runs, so
    // an empty answer after a failure means the thing is gone, not that the probe is blind.
    const vm = await d.client.run({ image: 'hello', name: 'control', ports: [{ hostPort: port, guestPort: 8080 }], volumes: [{ name: 'scratch', mountPath: '/data', sizeMiB: 32 }] });
    assert.deepEqual(d.leases(), [{ ip: vm.ip, vm_id: vm.id }]);
    assert.equal((await d.taps()).length, 1);
    assert.equal((await qemuProcesses(vm.id)).length, 1);
    assert.equal((await ramFiles(d)).length, 1);
    assert.ok((await listFiles(join(d.home, 'vms', vm.id))).includes(CONFIG_DRIVE));
    assert.equal(await listening(port), true);
    assert.deepEqual(await dnsAnswer(d, 'control'), [vm.ip]);
    await d.client.remove('control', { force: true, volumes: true });
    await assertNothingLeft(d, port, 'control removed', ['control']);
  });

  for (const step of STEP_NAMES.cold) {
    it(`a create fails right after '${step}'`, async () => {
      await d.kill('SIGTERM');
      await d.restart({ UIGNITER_FAIL_AFTER_STEP: step });
      const err = await d.client
        .run({ image: 'hello', name: 'doomed', ports: [{ hostPort: port, guestPort: 8080 }], volumes: [{ name: 'scratch', mountPath: '/data', sizeMiB: 32 }] })
        .then(() => null, (e: unknown) => e);
      assert.ok(err instanceof ApiError, `the create failed (${String(err)})`);
      assert.equal(err.status, 500);
      assert.match(err.message, new RegExp(`injected failure after step ${step}$`));
      // Each step's own resource, checked where it lives (the failed create removes only
      // its record and its directory itself; the rest is the undo of the step that made it).
      assert.deepEqual(d.leases(), [], `${step}: lease-address's lease released`);
      assert.deepEqual(await readdir(join(d.home, 'volumes')), [], `${step}: prepare-volumes's new volume deleted`);
      assert.deepEqual(await d.taps(), [], `${step}: create-tap's tap deleted`);
      assert.deepEqual(await qemuProcesses(d.home), [], `${step}: launch-vmm's QEMU ended`);
      assert.deepEqual(await ramFiles(d), [], `${step}: launch-vmm's RAM file removed`);
      assert.equal(await listening(port), false, `${step}: publish-ports's port closed`);
      assert.equal(await dnsAnswer(d, 'doomed'), 'ENOTFOUND', `${step}: register-name's name forgotten`);
      await assertNothingLeft(d, port, step, ['doomed']);
    });
  }

  describe('a start of a stopped VM fails after each step in turn and leaves it as it was', () => {
    let id: string;
    let ip: string;
    let runFiles: string[];
    let volumesBefore: unknown;
    before(async () => {
      await d.kill('SIGTERM');
      await d.restart();
      const vm = await d.client.run({ image: 'hello', name: 'again', ports: [{ hostPort: port, guestPort: 8080 }], volumes: [{ name: 'kept', mountPath: '/data', sizeMiB: 32 }] });
      assert.equal((await d.client.stop('again')).state, 'stopped');
      id = vm.id;
      ip = vm.ip!;
      runFiles = await listFiles(join(d.home, 'vms', id));
      volumesBefore = await d.client.volumes();
      assert.ok(!runFiles.includes(CONFIG_DRIVE), `a stopped VM has no config drive (${runFiles.join(', ')})`);
    });

    for (const [i, step] of STEP_NAMES.cold.entries()) {
      it(`a start fails right after '${step}'`, async () => {
        await d.kill('SIGTERM');
        await d.restart({ UIGNITER_FAIL_AFTER_STEP: step });
        const err = await d.client.start('again').then(() => null, (e: unknown) => e);
        assert.ok(err instanceof ApiError, `the start failed (${String(err)})`);
        assert.equal(err.status, 500);
        assert.match(err.message, new RegExp(`injected failure after step ${step}$`));
        const vm = await d.client.get('again');
        // A boot that failed before its VMM ran leaves the VM stopped; after, it failed.
        assert.equal(vm.state, i < LAUNCHED_AT ? 'stopped' : 'failed', `${step}: state`);
        assert.match(vm.error ?? '', new RegExp(`injected failure after step ${step}$`));
        assert.equal(vm.pid, null);
        // A stopped VM keeps its address: lease-address's rollback must not release it.
        assert.equal(vm.ip, ip, `${step}: the VM keeps its address`);
        assert.deepEqual(d.leases(), [{ ip, vm_id: id }], `${step}: its lease is kept, no other taken`);
        // prepare-volumes: detached, not deleted (the volume existed before this boot).
        assert.deepEqual(await d.client.volumes(), volumesBefore, `${step}: the volume is kept and detached`);
        assert.deepEqual(await d.taps(), [], `${step}: create-tap's tap deleted`);
        // write-config's config drive (and launch-vmm's sockets) gone: the directory holds
        // what the stop left, which is where a leftover of one step would show.
        assert.deepEqual(await listFiles(join(d.home, 'vms', id)), runFiles, `${step}: the run directory as the stop left it`);
        assert.deepEqual(await qemuProcesses(id), [], `${step}: launch-vmm's QEMU ended`);
        assert.deepEqual(await ramFiles(d), [], `${step}: launch-vmm's RAM file removed`);
        assert.equal(await listening(port), false, `${step}: publish-ports's port closed`);
        assert.equal(await dnsAnswer(d, 'again'), 'ENOTFOUND', `${step}: register-name's name forgotten`);
      });
    }

    it('starts once the fault is gone, then is removed with its volume', async () => {
      await d.kill('SIGTERM');
      await d.restart();
      const vm = await d.client.start('again');
      assert.equal(vm.state, 'running');
      assert.equal(vm.ip, ip);
      assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 200);
      assert.deepEqual(await dnsAnswer(d, 'again'), [ip]);
      await d.client.remove('again', { force: true, volumes: true });
      await assertNothingLeft(d, port, 'after removing the started VM', ['again']);
    });
  });

  it('works again once the fault is gone', async () => {
    await d.kill('SIGTERM');
    await d.restart();
    const vm = await d.client.run({ image: 'hello', name: 'fine', ports: [{ hostPort: port, guestPort: 8080 }], volumes: [{ name: 'scratch', mountPath: '/data', sizeMiB: 32 }] });
    assert.equal(vm.state, 'running');
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(res.status, 200);
    await d.client.remove('fine', { volumes: true });
    await assertNothingLeft(d, port, 'after delete with volumes=1', ['fine']);
  });

  it("a running VM's published port answers again once a restart adopts it", async () => {
    const port = await freePort();
    const vm = await d.client.run({ image: 'hello', name: 'published', ports: [{ hostPort: port, guestPort: 8080 }] });
    const get = (): Promise<number> => fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(3000) }).then((r) => r.status);
    assert.equal(await get(), 200, 'positive control: the port answers while the daemon runs');
    await d.kill('SIGKILL');
    // The daemon proxies published ports: with it gone the port is closed.
    await assert.rejects(get(), 'the port closed with the daemon');
    await d.restart();
    assert.equal((await d.client.get('published')).pid, vm.pid, 'adopted, not booted again');
    assert.equal(await waitFor(async () => (await get().catch(() => 0)) === 200 || null, 30_000, 'the port published again'), true);
    await d.client.remove('published', { force: true });
    await assert.rejects(get(), 'and closed again with the VM');
  });
});

describe('real failures of a create undo what was done', () => {
  let d: TestDaemon;
  let sleeperDir: string;
  before(async () => {
    // A /29: five guest addresses, to exhaust; a 4 s readiness timeout.
    d = await startTestDaemon({ prefix: 29, args: ['--ready-timeout', '4'] });
    await buildFixture(d.home, join(FIXTURES, 'hello'), 'hello');
    sleeperDir = await makeShellApp('echo sleeping; exec sleep 3600');
    await buildFixture(d.home, sleeperDir, 'sleeper');
  });
  after(async () => {
    await d?.destroy();
    await removeHome(sleeperDir);
  });

  it('a readiness timeout kills the VM and frees its address', async () => {
    const port = await freePort();
    // The app listens on 9999 but the image checks 8080: it never becomes ready.
    const err = await d.client.run({ image: 'hello', name: 'deaf', env: { PORT: '9999' }, ports: [{ hostPort: port, guestPort: 8080 }] }).catch((e: unknown) => e);
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 504);
    assert.match(err.message, /not ready within 4000 ms/);
    await assertNothingLeft(d, port, 'timeout', ['deaf']);
  });

  it('an app that exits before it is ready fails the create with its status', async () => {
    const dir = await makeShellApp('echo bye; exit 9', { ready: { tcp: 8080 } });
    try {
      await buildFixture(d.home, dir, 'quitter');
      const err = await d.client.run({ image: 'quitter', name: 'quitter' }).catch((e: unknown) => e);
      assert.ok(err instanceof ApiError);
      assert.equal(err.status, 502);
      assert.match(err.message, /exited with status 9 before it was ready/);
      await assertNothingLeft(d, 1, 'early exit', ['quitter']);
    } finally {
      await removeHome(dir);
    }
  });

  it('QEMU failing to start is reported and undone; a missing layer is named before QEMU runs', async () => {
    const { mkdir, readFile, rename, rmdir } = await import('node:fs/promises');
    const manifest = JSON.parse(await readFile(join(d.home, 'images', 'sleeper', 'latest.json'), 'utf8')) as { layers: { id: string }[] };
    const file = join(d.home, 'layers', `${manifest.layers[0]!.id.slice(7)}.sqfs`);
    await rename(file, `${file}.away`);
    try {
      const missing = await d.client.run({ image: 'sleeper', name: 'broken' }).catch((e: unknown) => e);
      assert.ok(missing instanceof ApiError);
      assert.equal(missing.status, 409);
      assert.match(missing.message, /image sleeper:latest: its layer .* is missing; rebuild the image/);
      await assertNothingLeft(d, 1, 'layer missing', ['broken']);
      // A directory where the disk should be: QEMU itself refuses to start.
      await mkdir(file);
      const qemuFailed = await d.client.run({ image: 'sleeper', name: 'broken' }).catch((e: unknown) => e);
      assert.ok(qemuFailed instanceof ApiError);
      assert.equal(qemuFailed.status, 502);
      assert.match(qemuFailed.message, /qemu exited at start \(code \d+\): .*requires .* to be a regular file/);
      await assertNothingLeft(d, 1, 'qemu failed', ['broken']);
    } finally {
      await rmdir(file).catch(() => undefined);
      await rename(`${file}.away`, file);
    }
  });

  it('an exhausted address pool answers 429 and leaves the pool as it was', async () => {
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      const vm = await d.client.run({ image: 'sleeper', name: `s${i}` }, 'launched');
      made.push(vm.name);
    }
    assert.equal(d.leases().length, 5);
    const err = await d.client.run({ image: 'sleeper', name: 'one-too-many' }).catch((e: unknown) => e);
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 429);
    assert.match(err.message, /no free address left/);
    assert.equal(d.leases().length, 5);
    assert.equal((await d.taps()).length, 5);
    for (const n of made) await d.client.remove(n, { force: true });
    await assertNothingLeft(d, 1, 'after the pool test', [...made, 'one-too-many']);
  });

  // The daemon is killed (SIGKILL, from its own fault hook) right after a known step, so
  // what the crash leaves is known and the repair has one right outcome to check.
  const crashCreate = async (step: string): Promise<void> => {
    await d.kill('SIGTERM');
    await d.restart({ UIGNITER_CRASH_AFTER_STEP: step });
    const err = await d.client.run({ image: 'sleeper', name: 'interrupted' }).then(() => null, (e: unknown) => e);
    assert.ok(err !== null, 'the create got no answer: the daemon died');
    await d.kill('SIGKILL'); // waits for its end (it killed itself)
  };

  it('a crash while the VM is still being created: the restart undoes the create', async () => {
    await crashCreate('create-tap');
    // What the crash left: the lease and the tap of a VM still 'creating'.
    assert.equal(d.leases().length, 1, 'the crash left a lease');
    assert.equal((await d.taps()).length, 1, 'the crash left a tap');
    await d.restart();
    await assertNothingLeft(d, 1, 'after crash recovery of a creating VM', ['interrupted']);
  });

  it('a crash once the VM runs: the restart adopts it, its QEMU untouched', async () => {
    await crashCreate('launch-vmm');
    const [pid, ...more] = await qemuProcesses(d.home);
    assert.ok(pid !== undefined && more.length === 0, 'the crash left exactly one QEMU running');
    await d.restart();
    const vm = await d.client.get('interrupted');
    assert.equal(vm.pid, pid, 'adopted: the same QEMU process, not a new boot');
    assert.equal(vm.boots, 1);
    assert.deepEqual(await qemuProcesses(d.home), [pid]);
    const running = await waitFor(async () => {
      const v = await d.client.get('interrupted');
      return v.state === 'running' ? v : null;
    }, 60_000, 'the adopted VM to be running');
    assert.deepEqual(await dnsAnswer(d, 'interrupted'), [running.ip], 'register-name redone for the adopted VM');
    await d.client.remove('interrupted', { force: true });
    await assertNothingLeft(d, 1, 'after removing the adopted VM', ['interrupted']);
    await rm(join(d.home, 'unused'), { force: true });
  });

  // A delete has two points where a crash leaves work half done (Fleet.forget): the record
  // is gone but the lease and directory are not, then the lease is gone too. At each, the
  // restart must finish the delete, not leave a record whose address is free for another
  // VM (the order the other way round did: the crash after the lease left a stopped VM
  // with an address and no lease, and this test's record check fails on it).
  for (const point of ['forget-record', 'forget-lease']) {
    it(`a crash in the middle of a delete (after ${point}): the restart finishes it`, async () => {
      await d.kill('SIGTERM');
      await d.restart({ UIGNITER_CRASH_AFTER_STEP: point });
      // Ready, not just launched: removing a VM still booting undoes its create plan, whose
      // undo releases the lease before forget runs.
      const vm = await d.client.run({ image: 'sleeper', name: 'doomed' });
      assert.equal(vm.state, 'running');
      assert.deepEqual(d.leases().map((l) => l.vm_id), [vm.id], 'control: the VM holds its lease');
      const err = await d.client.remove('doomed', { force: true }).then(() => null, (e: unknown) => e);
      assert.ok(err !== null, 'the delete got no answer: the daemon died');
      await d.kill('SIGKILL'); // waits for its end (it killed itself)
      // What the crash left: the VM's QEMU is stopped; its directory remains, and its lease
      // too when the crash came before the release.
      assert.deepEqual(await qemuProcesses(d.home), [], 'the delete stopped the QEMU before the crash');
      assert.deepEqual(await readdir(join(d.home, 'vms')), [vm.id], 'the crash left the VM directory');
      assert.deepEqual(d.leases().map((l) => l.vm_id), point === 'forget-record' ? [vm.id] : [], 'the lease as the crash left it');
      await d.restart();
      await assertNothingLeft(d, 1, `after a crash at ${point}`, ['doomed']);
      // Its address is free again: the whole pool (5 addresses) can be leased, this one too.
      const made: VmView[] = [];
      for (let i = 0; i < 5; i++) made.push(await d.client.run({ image: 'sleeper', name: `n${i}` }, 'launched'));
      assert.ok(made.some((m) => m.ip === vm.ip), `the freed address ${vm.ip} is leased again`);
      for (const m of made) await d.client.remove(m.name, { force: true });
      await assertNothingLeft(d, 1, 'after removing the pool-filling VMs', made.map((m) => m.name));
    });
  }
});
