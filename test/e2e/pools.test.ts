import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiError, type PoolView, type VmView } from '../../src/client/client.js';
import { buildFixture, guestGet, resolveOnHost, startTestDaemon, type TestDaemon } from '../daemon-harness.js';
import { FIXTURES, qemuProcesses, waitFor } from '../helpers.js';

const resolveOne = async (d: TestDaemon, name: string): Promise<string | null> => (await resolveOnHost(d, name))[0] ?? null;

const full = (d: TestDaemon, id: string, size: number): Promise<PoolView> =>
  waitFor(
    async () => {
      const p = await d.client.getPool(id);
      return p.ready.length === size && p.starting.length === 0 ? p : null;
    },
    120_000,
    `pool ${id} to hold ${size} paused spares`,
    200,
  );

/**
 * Warm pools on real guests: spares booted and paused, handed out by POST /vm/run of their
 * spec as distinct, renamed machines, refilled, counted against the limits, kept across a
 * daemon SIGKILL, and removed with their pool.
 */
describe('warm pools', () => {
  let d: TestDaemon;
  let poolId: string;

  before(async () => {
    d = await startTestDaemon({ args: ['--max-vms', '3'] });
    await buildFixture(d.home, join(FIXTURES, 'counter'), 'counter');
  });
  after(async () => {
    await d?.destroy();
  });

  it('keeps its spares booted and paused', async () => {
    const p = await d.client.createPool({ image: 'counter', size: 2 });
    poolId = p.id;
    assert.deepEqual(p.warm, { port: 8080, path: '/healthz', requests: 10 }, "by default a spare is warmed by its image's readiness check");
    const ready = await full(d, poolId, 2);
    const vms = await d.client.list();
    for (const name of ready.ready) {
      const vm = vms.find((v) => v.name === name)!;
      assert.equal(vm.state, 'paused');
      assert.equal(vm.pool, poolId);
      await assert.rejects(guestGet(vm.ip!, '/healthz', 800), 'a paused spare does not answer');
    }
  });

  it('POST /vm/run of its spec takes a spare: renamed, resumed, answering, and the pool refills', async () => {
    const spares = (await d.client.list()).filter((v) => v.pool === poolId);
    assert.equal(spares.length, 2, 'two spares were there');
    const res = await fetch(`${d.url}/vm/run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: 'counter', name: 'handed' }) });
    assert.equal(res.status, 201);
    const vm = (await res.json()) as VmView;
    // The next spare waits half a second: nothing competes with this VM's first requests.
    const right = await d.client.getPool(poolId);
    assert.equal(right.ready.length + right.starting.length, 1, `no spare made yet right after the hand-out (${JSON.stringify(right)})`);
    assert.match(res.headers.get('server-timing') ?? '', /^claim;dur=[\d.]+, resume;dur=[\d.]+, renew;dur=[\d.]+, publish;dur=[\d.]+$/, 'Server-Timing splits the hand-out');
    assert.equal(vm.origin, 'pool');
    assert.equal(vm.pool, null);
    assert.equal(vm.state, 'running');
    const taken = spares.find((s) => s.id === vm.id);
    assert.ok(taken, 'the VM is one of the spares');
    assert.equal(vm.ip, taken.ip, 'it keeps the address the spare had');
    const id = await guestGet<{ hostname: string; ip: string; now: number }>(vm.ip!, '/identity');
    assert.equal(id.hostname, 'handed', 'the guest took the name it was given');
    assert.equal(id.ip, vm.ip);
    assert.ok(Math.abs(id.now - Date.now()) < 1000, 'its clock is the host\'s');
    const first = await guestGet<{ count: number }>(vm.ip!, '/');
    assert.equal(first.count, 1, 'the warm-up requests (its readiness check) reached no other path of the app');
    // The spare already had this address and MAC: the renewal kept its link up.
    const console = await readFile(join(d.home, 'vms', vm.id, 'console.log'), 'utf8');
    assert.match(console, /agent: renewed as handed \S+ in \d+ ms, network kept, own connections kept/);
    assert.equal(await resolveOne(d, 'handed'), vm.ip, 'its new name resolves');
    assert.equal(await resolveOne(d, taken.name), null, 'its spare name no longer resolves');
    // The pool starts a new spare: with the handed-out VM, --max-vms 3 is then reached.
    const refilled = await full(d, poolId, 2);
    assert.ok(!refilled.ready.includes(taken.name));
    const err = await d.client.run({ image: 'counter', boot: 'cold', name: 'no-room' }).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof ApiError && err.status === 429, `the spares count against the limits (${String(err)})`);
    await d.client.remove('handed', { force: true });
  });

  it('a create that asks for another code cache takes no spare: the spare\'s VMM has the default one', async () => {
    const spares = (await full(d, poolId, 2)).ready;
    const vm = await d.client.run({ image: 'counter', name: 'own-cache', codeCacheMiB: 64 });
    assert.notEqual(vm.origin, 'pool');
    assert.equal(vm.codeCacheMiB, 64);
    const argv = (await readFile(`/proc/${vm.pid}/cmdline`, 'utf8')).split('\0');
    if (argv.includes('kvm')) assert.ok(!argv.some((a) => a.includes('tb-size')), 'KVM has no code cache');
    else assert.ok(argv.includes('tcg,tb-size=64'), `its QEMU runs with the cache asked for: ${argv.join(' ')}`);
    assert.deepEqual((await full(d, poolId, 2)).ready.sort(), spares.sort(), 'both spares are still there, paused');
    await d.client.remove('own-cache', { force: true });
  });

  it('a daemon SIGKILLed keeps its pool: the same spares are adopted, none added', async () => {
    const vmsBefore = (await d.client.list()).map((v) => `${v.id}:${v.state}`).sort();
    const pids = (await qemuProcesses(d.home)).sort();
    await d.kill('SIGKILL');
    await d.restart();
    assert.deepEqual((await d.client.pools()).map((p) => p.id), [poolId]);
    await full(d, poolId, 2);
    assert.deepEqual((await d.client.list()).map((v) => `${v.id}:${v.state}`).sort(), vmsBefore);
    assert.deepEqual((await qemuProcesses(d.home)).sort(), pids);
  });

  it('bad pool requests answer 4xx and change nothing', async () => {
    for (const [body, field] of [
      [{ image: 'counter', size: -1 }, 'size'],
      [{ image: 'counter', size: 65 }, 'size'],
      [{ image: 'no-such-image', size: 1 }, 'image'],
      [{ image: 'counter', size: 1, colour: 'red' }, undefined],
      [{ image: 'counter', size: 1, warm: { requests: 101 } }, 'warm.requests'],
      [{ image: 'counter', size: 1, warm: { path: 'no-slash' } }, 'warm.path'],
    ] as const) {
      const err = await d.client.raw('POST', '/pools', body).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof ApiError && err.status >= 400 && err.status < 500, `${JSON.stringify(body)} is refused (${String(err)})`);
      if (field) assert.equal(err.field, field);
    }
    assert.equal((await d.client.pools()).length, 1);
  });

  it('DELETE /pools/{id} removes the pool and its spares', async () => {
    await d.client.removePool(poolId);
    assert.deepEqual(await d.client.pools(), []);
    assert.deepEqual((await d.client.list()).filter((v) => v.pool !== null), []);
    assert.deepEqual(await qemuProcesses(d.home), []);
    assert.deepEqual(await d.taps(), []);
    assert.deepEqual(d.leases(), []);
  });

  it('a pool primed with a path sends it to every spare before the pause', async () => {
    const p = await d.client.createPool({ image: 'counter', size: 1, warm: { path: '/', requests: 2 } });
    assert.deepEqual(p.warm, { port: 8080, path: '/', requests: 2 });
    await full(d, p.id, 1);
    const vm = await d.client.run({ image: 'counter', name: 'primed' });
    assert.equal(vm.origin, 'pool');
    assert.equal((await guestGet<{ count: number }>(vm.ip!, '/')).count, 3, 'the spare served its 2 priming requests, then this one');
    await d.client.remove('primed', { force: true });
    await d.client.removePool(p.id);
    assert.deepEqual(await qemuProcesses(d.home), []);
  });
});
