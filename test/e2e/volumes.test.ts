import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiError, UigniterClient } from '../../src/client/client.js';
import { buildFixture, readLog, startTestDaemon, type TestDaemon } from '../daemon-harness.js';
import { makeShellApp, removeHome, waitFor } from '../helpers.js';

/**
 * Volumes on real ext4 disks: created on first use, kept across stop/start and VM deletion
 * unless asked, one running VM at a time. The daemon is also driven over its unix socket.
 */
describe('volumes', () => {
  let d: TestDaemon;
  let app: string;
  let sock: UigniterClient;

  before(async () => {
    const socket = `/tmp/uigniter-test-${process.pid}.sock`;
    d = await startTestDaemon({ args: ['--socket', socket] });
    sock = new UigniterClient(`unix:${socket}`);
    // Counts its boots in a file on the volume, says the count, then idles.
    app = await makeShellApp('n=$(( $(cat /data/boots 2>/dev/null || echo 0) + 1 )); echo $n > /data/boots; sync; echo "boot number $n"; exec sleep 3600');
    await buildFixture(d.home, app, 'counter');
  });
  after(async () => {
    await sock?.close();
    await d?.destroy();
    await removeHome(app);
  });

  const bootNumber = async (vmId: string, n: number): Promise<void> => {
    await waitFor(async () => (await readLog(d.home, vmId)).includes(`boot number ${n}`), 30_000, `boot number ${n} in the console`);
  };

  it('a volume is created on first use and its data survives stop/start', async () => {
    const vm = await sock.run({ image: 'counter', name: 'c1', volumes: [{ name: 'state', mountPath: '/data', sizeMiB: 32 }] });
    await bootNumber(vm.id, 1);
    const [v] = await sock.volumes();
    assert.deepEqual([v!.name, v!.sizeMiB, v!.attachedTo, v!.usedBy], ['state', 32, vm.id, ['c1']]);
    await sock.stop('c1');
    assert.equal((await sock.volumes())[0]!.attachedTo, null, 'detached while stopped');
    await sock.start('c1');
    await bootNumber(vm.id, 2);
  });

  it('one running VM at a time: a second one asking for it gets 409 and nothing is left', async () => {
    const err = await sock.run({ image: 'counter', name: 'c2', volumes: [{ name: 'state', mountPath: '/data' }] }).catch((e: unknown) => e);
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 409);
    assert.match(err.message, /volume 'state' is attached to VM c1/);
    assert.deepEqual((await sock.list()).map((v) => v.name), ['c1']);
  });

  it('a volume outlives its VM; deleting it is refused while a VM names it', async () => {
    const refused = await sock.removeVolume('state').catch((e: unknown) => e);
    assert.ok(refused instanceof ApiError && refused.status === 409, String(refused));
    await sock.remove('c1');
    assert.deepEqual((await sock.volumes()).map((v) => v.name), ['state']);
    const vm = await sock.run({ image: 'counter', name: 'c3', volumes: [{ name: 'state', mountPath: '/data' }] });
    await bootNumber(vm.id, 3);
    await sock.remove('c3', { volumes: true, force: true });
    assert.deepEqual(await sock.volumes(), []);
    const { readdir } = await import('node:fs/promises');
    assert.deepEqual(await readdir(join(d.home, 'volumes')), []);
  });
});

describe('limits and daemon guard rails', () => {
  let d: TestDaemon;
  let app: string;
  before(async () => {
    d = await startTestDaemon({ args: ['--max-vms', '2', '--max-mem', '100'] });
    app = await makeShellApp('exec sleep 3600', { memMiB: 48, minMemMiB: 16 });
    await buildFixture(d.home, app, 'idle');
  });
  after(async () => {
    await d?.destroy();
    await removeHome(app);
  });

  it('answers 429 with the reason when a limit would be passed, and changes nothing', async () => {
    await d.client.run({ image: 'idle', name: 'i1' }, 'launched');
    const mem = await d.client.run({ image: 'idle', name: 'i2', memMiB: 96 }).catch((e: unknown) => e);
    assert.ok(mem instanceof ApiError);
    assert.equal(mem.status, 429);
    // i1 counts its full 48 MiB while it boots, what it holds once it runs: either way > 4 MiB.
    assert.match(mem.message, /96 MiB more memory would exceed the daemon's limit of 100 MiB: its 1 VM uses \d+ MiB/);
    assert.equal(mem.field, 'memMiB');
    await d.client.run({ image: 'idle', name: 'i2', memMiB: 32 }, 'launched');
    const count = await d.client.run({ image: 'idle', name: 'i3', memMiB: 16 }).catch((e: unknown) => e);
    assert.ok(count instanceof ApiError);
    assert.equal(count.status, 429);
    assert.match(count.message, /limited to 2 VMs/);
    assert.deepEqual((await d.client.list()).map((v) => v.name), ['i1', 'i2']);
    assert.equal(d.leases().length, 2);
  });

  it('refuses to listen off loopback without a token', async () => {
    const { cli } = await import('../helpers.js');
    const r = await cli(d.home, ['daemon', '--host', '0.0.0.0', '--port', '1', '--netns', 'never-made']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /listening on 0\.0\.0\.0 needs a bearer token/);
  });
});
