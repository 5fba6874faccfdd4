import assert from 'node:assert/strict';
import { readdir, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiError } from '../../src/client/client.js';
import { STEP_NAMES } from '../../src/core/plans/boot-plans.js';
import { buildFixture, startTestDaemon, type TestDaemon } from '../daemon-harness.js';
import { FIXTURES, freePort, makeShellApp, qemuProcesses, removeHome } from '../helpers.js';

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** Everything a VM can leave behind: none of it may remain after a failed create. */
async function assertNothingLeft(d: TestDaemon, port: number, what: string): Promise<void> {
  assert.deepEqual(await d.client.list(), [], `${what}: no VM record`);
  assert.deepEqual(d.leases(), [], `${what}: no IP lease`);
  assert.deepEqual(await d.taps(), [], `${what}: no tap`);
  assert.deepEqual(await qemuProcesses(d.home), [], `${what}: no QEMU`);
  assert.deepEqual(await readdir(join(d.home, 'vms')), [], `${what}: no VM directory (config drive, sockets, logs)`);
  assert.deepEqual(await readdir(join(d.home, 'volumes')), [], `${what}: no volume created for it`);
  assert.deepEqual((await d.client.volumes()).map((v) => v.name), [], `${what}: no volume record`);
  assert.equal(await listening(port), false, `${what}: its published port is closed`);
}

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

  for (const step of STEP_NAMES.cold) {
    it(`fails right after '${step}'`, async () => {
      await d.kill('SIGTERM');
      await d.restart({ UIGNITER_FAIL_AFTER_STEP: step });
      const err = await d.client
        .run({ image: 'hello', name: 'doomed', ports: [{ hostPort: port, guestPort: 8080 }], volumes: [{ name: 'scratch', mountPath: '/data', sizeMiB: 32 }] })
        .then(() => null, (e: unknown) => e);
      assert.ok(err instanceof ApiError, `the create failed (${String(err)})`);
      assert.equal(err.status, 500);
      assert.match(err.message, new RegExp(`injected failure after step ${step}`));
      await assertNothingLeft(d, port, step);
    });
  }

  it('works again once the fault is gone', async () => {
    await d.kill('SIGTERM');
    await d.restart();
    const vm = await d.client.run({ image: 'hello', name: 'fine', ports: [{ hostPort: port, guestPort: 8080 }], volumes: [{ name: 'scratch', mountPath: '/data', sizeMiB: 32 }] });
    assert.equal(vm.state, 'running');
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(res.status, 200);
    await d.client.remove('fine', { volumes: true });
    await assertNothingLeft(d, port, 'after delete with volumes=1');
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
    await assertNothingLeft(d, port, 'timeout');
  });

  it('an app that exits before it is ready fails the create with its status', async () => {
    const dir = await makeShellApp('echo bye; exit 9', { ready: { tcp: 8080 } });
    try {
      await buildFixture(d.home, dir, 'quitter');
      const err = await d.client.run({ image: 'quitter', name: 'quitter' }).catch((e: unknown) => e);
      assert.ok(err instanceof ApiError);
      assert.equal(err.status, 502);
      assert.match(err.message, /exited with status 9 before it was ready/);
      await assertNothingLeft(d, 1, 'early exit');
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
      await assertNothingLeft(d, 1, 'layer missing');
      // A directory where the disk should be: QEMU itself refuses to start.
      await mkdir(file);
      const qemuFailed = await d.client.run({ image: 'sleeper', name: 'broken' }).catch((e: unknown) => e);
      assert.ok(qemuFailed instanceof ApiError);
      assert.equal(qemuFailed.status, 502);
      assert.match(qemuFailed.message, /qemu exited at start: .*requires .* to be a regular file/);
      await assertNothingLeft(d, 1, 'qemu failed');
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
    await assertNothingLeft(d, 1, 'after the pool test');
  });

  it('cleans what a crash during create left behind when the daemon comes back', async () => {
    // SIGKILL the daemon while a VM is being created (state 'creating' or 'booting').
    const pending = d.client.run({ image: 'hello', name: 'interrupted' }).catch(() => null);
    await new Promise((r) => setTimeout(r, 300));
    await d.kill('SIGKILL');
    await pending;
    await d.restart();
    const vms = await d.client.list();
    // Either the create was undone (still 'creating') or the booting VM was adopted.
    if (vms.length > 0) {
      assert.equal(vms[0]!.name, 'interrupted');
      await d.client.remove('interrupted', { force: true });
    }
    await assertNothingLeft(d, 1, 'after crash recovery');
    await rm(join(d.home, 'unused'), { force: true });
  });
});
