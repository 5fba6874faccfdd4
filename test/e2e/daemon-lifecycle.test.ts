import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { VmView } from '../../src/client/client.js';
import { buildFixture, guestGet, startTestDaemon, type TestDaemon } from '../daemon-harness.js';
import { processAlive } from '../../src/util/process.js';
import { childrenWith, FIXTURES, qemuProcesses, waitFor } from '../helpers.js';

/**
 * The daemon end to end on real QEMU guests, taps and SQLite: VMs reach each other by IP and
 * by name, stop/start keeps the address, delete frees it, and a daemon killed with SIGKILL
 * adopts its running VMs when it comes back.
 */
describe('uigniterd: lifecycle, VM-to-VM network, adoption after SIGKILL', () => {
  let d: TestDaemon;
  let a: VmView;
  let b: VmView;

  before(async () => {
    d = await startTestDaemon();
    await buildFixture(d.home, join(FIXTURES, 'hello'), 'hello');
  });
  after(async () => {
    await d?.destroy();
  });

  it('runs two VMs of a sample app, each with its own address', async () => {
    a = await d.client.run({ image: 'hello', name: 'vm-a', env: { GREETING: 'from a' } });
    b = await d.client.run({ image: 'hello', name: 'vm-b', args: ['x', 'y z'] });
    assert.equal(a.state, 'running');
    assert.equal(b.state, 'running');
    assert.ok(a.ip && b.ip && a.ip !== b.ip);
    assert.ok(a.bootMs !== null && a.bootMs > 0);
    const fromB = await guestGet<{ greeting: string; args: string[]; hostname: string }>(b.ip!, '/');
    assert.deepEqual(fromB.args, ['x', 'y z']);
    assert.equal(fromB.hostname, 'vm-b');
  });

  it('VM A reaches VM B by IP and by name', async () => {
    const byIp = await guestGet<{ status: number; body: string }>(a.ip!, `/fetch?url=${encodeURIComponent(`http://${b.ip}:8080/`)}`);
    assert.equal(byIp.status, 200);
    assert.equal((JSON.parse(byIp.body) as { hostname: string }).hostname, 'vm-b');
    const byName = await guestGet<{ status: number; body: string }>(a.ip!, `/fetch?url=${encodeURIComponent('http://vm-b:8080/')}`);
    assert.equal(byName.status, 200, JSON.stringify(byName));
    assert.equal((JSON.parse(byName.body) as { hostname: string }).hostname, 'vm-b');
    const resolved = await guestGet<{ address: string }>(a.ip!, '/resolve?name=vm-b.uigniter.internal');
    assert.equal(resolved.address, b.ip);
    const unknown = await guestGet<{ error?: string }>(a.ip!, '/resolve?name=no-such-vm');
    assert.ok(unknown.error, 'an unknown name does not resolve');
  });

  it('stop then start keeps the IP; the app got SIGTERM', async () => {
    const stopped = await d.client.stop('vm-b');
    assert.equal(stopped.state, 'stopped');
    assert.equal(stopped.exitCode, 0);
    assert.equal(stopped.ip, b.ip);
    assert.match(await d.client.logs('vm-b'), /hello: SIGTERM #1, closing/);
    assert.doesNotMatch(await d.client.logs('vm-b'), /SIGTERM #2/, 'the stop request reaches the app once');
    assert.deepEqual((await d.taps()).length, 1, 'the stopped VM has no tap');
    const started = await d.client.start('vm-b');
    assert.equal(started.state, 'running');
    assert.equal(started.ip, b.ip);
    assert.equal(started.boots, 2);
    const again = await guestGet<{ args: string[] }>(b.ip!, '/');
    assert.deepEqual(again.args, ['x', 'y z'], 'the same spec');
  });

  it('a daemon killed with SIGKILL adopts its running VMs, with no lease lost or doubled', async () => {
    const before = d.leases();
    const qemus = (await qemuProcesses(d.home)).sort();
    assert.equal(qemus.length, 2);
    // The daemon's command helper (util/command-helper) must not outlive it.
    const helpers = await childrenWith(d.child.pid!, 'command-helper-child');
    assert.equal(helpers.length, 1, 'the daemon runs one command helper');
    await d.kill('SIGKILL');
    await waitFor(async () => !processAlive(helpers[0]!), 5000, 'the helper of a SIGKILLed daemon to exit');
    // The guests keep running without the daemon.
    assert.equal((await guestGet<{ hostname: string }>(a.ip!, '/')).hostname, 'vm-a');
    await d.restart();
    assert.match(d.log(), /"adopted":\["vm-a","vm-b"\]/);
    const vms = await d.client.list();
    assert.deepEqual(vms.map((v) => [v.name, v.state, v.ip]), [
      ['vm-a', 'running', a.ip],
      ['vm-b', 'running', b.ip],
    ]);
    assert.deepEqual((await qemuProcesses(d.home)).sort(), qemus, 'the same QEMU processes, none started again');
    assert.deepEqual(d.leases(), before);
    assert.equal(new Set(d.leases().map((l) => l.ip)).size, 2);
    const helpersAfter = await childrenWith(d.child.pid!, 'command-helper-child');
    assert.equal(helpersAfter.length, 1, 'the restarted daemon has its own helper');
    // A graceful daemon stop (SIGTERM) leaves the VMs running too, for the next daemon.
    await d.kill('SIGTERM');
    await waitFor(async () => !processAlive(helpersAfter[0]!), 5000, 'the helper of a stopped daemon to exit');
    assert.equal((await guestGet<{ hostname: string }>(b.ip!, '/')).hostname, 'vm-b');
    await d.restart();
    assert.deepEqual((await d.client.list()).map((v) => v.state), ['running', 'running']);
    assert.deepEqual((await qemuProcesses(d.home)).sort(), qemus);
    // Still answering, still talking to each other, and still under control.
    const byName = await guestGet<{ status: number }>(a.ip!, `/fetch?url=${encodeURIComponent('http://vm-b:8080/')}`);
    assert.equal(byName.status, 200);
    const stopped = await d.client.stop('vm-a');
    assert.equal(stopped.state, 'stopped');
    assert.equal(stopped.exitCode, 0);
    assert.match(await d.client.logs('vm-a'), /hello: SIGTERM #1, closing/);
  });

  it('delete frees the address, the tap and the files', async () => {
    await d.client.remove('vm-a');
    await d.client.remove('vm-b');
    assert.deepEqual(await d.client.list(), []);
    assert.deepEqual(d.leases(), []);
    assert.deepEqual(await d.taps(), []);
    assert.deepEqual(await qemuProcesses(d.home), []);
  });
});
