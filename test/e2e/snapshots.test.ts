import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiError, type VmView } from '../../src/client/client.js';
import { STEP_NAMES } from '../../src/core/plans/boot-plans.js';
import { run } from '../../src/util/exec.js';
import { Paths } from '../../src/util/paths.js';
import { buildFixture, guestGet, resolveOnHost as resolveAll, startTestDaemon, type TestDaemon } from '../daemon-harness.js';
import { FIXTURES, qemuProcesses, waitFor } from '../helpers.js';

interface Identity {
  hostname: string;
  mac: string | null;
  ip: string | null;
  now: number;
  urandom: string;
  uuid: string;
  webUuid: string;
  randomBytes: string;
  getRandomValues: string;
  math: number;
  bootToken: string;
}

const count = async (ip: string): Promise<number> => (await guestGet<{ count: number }>(ip, '/')).count;

/** Resolves a VM name through the daemon's DNS, from the host; null when it does not resolve. */
const resolveOnHost = async (d: TestDaemon, name: string): Promise<string | null> => (await resolveAll(d, name))[0] ?? null;

/** The guest RAM files the QEMU driver keeps on tmpfs for this daemon's VMs. */
async function ramFiles(d: TestDaemon): Promise<string[]> {
  return (await readdir(new Paths(d.home).memory).catch(() => [] as string[])).sort();
}

/**
 * Snapshots and clones end to end on real QEMU guests: pause and resume, named snapshots
 * restored twice, templates whose clones are distinct machines, suspend, adoption after a
 * SIGKILL of the daemon, and a restore failing at each step leaving nothing behind.
 */
describe('snapshots, clones, pause, suspend', () => {
  let d: TestDaemon;
  let src: VmView;

  before(async () => {
    d = await startTestDaemon();
    await buildFixture(d.home, join(FIXTURES, 'counter'), 'counter');
  });
  after(async () => {
    await d?.destroy();
  });

  it('pause: a request does not complete; resume: it completes; the state is kept', async () => {
    src = await d.client.run({ image: 'counter', name: 'src', boot: 'cold' });
    assert.equal(src.state, 'running');
    assert.equal(src.origin, 'cold');
    assert.equal(await count(src.ip!), 1, 'positive control: the running VM answers');
    const paused = await d.client.pause('src');
    assert.equal(paused.state, 'paused');
    await assert.rejects(guestGet(src.ip!, '/', 1500), /abort|timeout/i, 'a paused VM does not answer');
    const pending = guestGet<{ count: number }>(src.ip!, '/', 15_000);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await d.client.get('src')).state, 'paused', 'the state is persisted');
    const resumed = await d.client.resume('src');
    assert.equal(resumed.state, 'running');
    // The request made while paused completes once resumed (the first timed-out one may too).
    const answered = (await pending).count;
    assert.ok(answered >= 2 && answered <= 3, `the held request completed after resume (count ${answered})`);
    // The guest's clock stood still for the 2 s it was paused; resume sets it again.
    const hostNow = Date.now();
    const guestNow = (await guestGet<Identity>(src.ip!, '/identity')).now;
    assert.ok(Math.abs(guestNow - hostNow) < 1000, `the guest's clock is within 1 s of the host's after resume (${guestNow - hostNow} ms)`);
  });

  it('an app counting in memory, snapshotted at N, restored twice: both clones answer N+1', async () => {
    const n = await count(src.ip!);
    const snap = await d.client.snapshot('src', 'at-n');
    assert.equal(snap.kind, 'snapshot');
    assert.equal(snap.memory, 'file');
    assert.equal(snap.appQuiesced, true, 'the Node hooks acknowledged the freeze');
    assert.equal(await count(src.ip!), n + 1, 'the source runs on after its snapshot');
    const c1 = await d.client.run({ snapshot: 'at-n', name: 'clone-1' });
    const c2 = await d.client.run({ snapshot: 'at-n', name: 'clone-2' });
    for (const c of [c1, c2]) {
      assert.equal(c.state, 'running');
      assert.equal(c.origin, 'snapshot');
      assert.equal(c.restoredFrom, 'at-n');
    }
    assert.equal(await count(c1.ip!), n + 1);
    assert.equal(await count(c2.ip!), n + 1);
    assert.equal(await count(c1.ip!), n + 2, 'each clone counts on by itself');
  });

  it("a clone's connections from the snapshot's address are aborted at its renewal; the source keeps its own", async () => {
    const peer = await d.client.run({ image: 'counter', name: 'peer', boot: 'cold' });
    assert.deepEqual(await guestGet(src.ip!, `/hold?host=${peer.ip}&port=8080`), { held: 1 });
    await d.client.snapshot('src', 'holding');
    const clone = await d.client.run({ snapshot: 'holding', name: 'clone-held' });
    type Held = { state: string; error: string | null }[];
    const seen = await waitFor(async () => {
      const h = await guestGet<Held>(clone.ip!, '/held');
      return h[0]?.state === 'closed' ? h : null;
    }, 5000, "the clone's held connection to close");
    assert.deepEqual(seen, [{ state: 'closed', error: 'ECONNABORTED' }], 'aborted by the renewal, not timed out');
    assert.deepEqual(await guestGet<Held>(src.ip!, '/held'), [{ state: 'open', error: null }], 'positive control: the source still holds its connection');
    const consoleLog = await readFile(join(d.home, 'vms', clone.id, 'console.log'), 'utf8');
    // The held one at least; connections the host's requests left open to src count too.
    const aborted = /agent: (\d+) connection\(s\) of the snapshot aborted/.exec(consoleLog);
    assert.ok(aborted && Number(aborted[1]) >= 1, `the agent says it aborted the held connection: ${consoleLog.split('\n').filter((l) => l.includes('agent:')).join(' | ')}`);
    for (const n of ['clone-held', 'peer']) await d.client.remove(n, { force: true });
    await d.client.removeSnapshot('holding');
  });

  it('deleting a snapshot that a running clone depends on is refused', async () => {
    const err = await d.client.removeSnapshot('at-n').then(() => null, (e: unknown) => e);
    assert.ok(err instanceof ApiError && err.status === 409, `refused with 409 (${String(err)})`);
    assert.match(err.message, /clone-1|clone-2/);
    assert.deepEqual((await d.client.getSnapshot('at-n')).usedBy.sort(), ['clone-1', 'clone-2']);
    await d.client.remove('clone-1', { force: true });
    await d.client.remove('clone-2', { force: true });
    await d.client.removeSnapshot('at-n');
    assert.deepEqual(await d.client.snapshots(), []);
    assert.deepEqual(await readdir(join(d.home, 'snapshots')), [], 'its files are gone');
  });

  it('two clones of one template are distinct machines', async () => {
    // The first VM of a spec booted with boot=auto becomes its template once ready.
    const first = await d.client.run({ image: 'counter', name: 'first', env: { FLAVOUR: 'tpl' } });
    assert.equal(first.origin, 'cold');
    const [tpl] = await waitFor(
      async () => {
        const mine = (await d.client.templates()).filter((t) => t.source.name === 'first');
        return mine.length > 0 ? mine : null;
      },
      60_000,
      'the template of first',
    );
    assert.equal(tpl!.kind, 'template');
    const a = await d.client.run({ image: 'counter', name: 'twin-a', env: { FLAVOUR: 'tpl' } });
    const b = await d.client.run({ image: 'counter', name: 'twin-b', env: { FLAVOUR: 'tpl' } });
    const third = await d.client.run({ image: 'counter', name: 'third', boot: 'cold' });
    for (const c of [a, b]) {
      assert.equal(c.origin, 'template');
      assert.equal(c.restoredFrom, tpl!.name);
    }
    assert.notEqual(a.ip, b.ip);
    assert.notEqual(a.mac, b.mac);
    const hostNow = Date.now();
    const ia = await guestGet<Identity>(a.ip!, '/identity');
    const ib = await guestGet<Identity>(b.ip!, '/identity');
    assert.equal(ia.hostname, 'twin-a');
    assert.equal(ib.hostname, 'twin-b');
    assert.equal(ia.ip, a.ip, "the guest's own address is the one the daemon leased");
    assert.equal(ib.ip, b.ip);
    assert.equal(ia.mac, a.mac);
    assert.equal(ib.mac, b.mac);
    assert.ok(Math.abs(ia.now - hostNow) < 1000, `clone a's clock is within 1 s of the host's (${ia.now - hostNow} ms)`);
    assert.ok(Math.abs(ib.now - hostNow) < 1000, `clone b's clock is within 1 s of the host's (${ib.now - hostNow} ms)`);
    for (const k of ['urandom', 'uuid', 'webUuid', 'randomBytes', 'getRandomValues', 'math'] as const) {
      assert.notEqual(ia[k], ib[k], `${k} differs between the clones`);
    }
    assert.equal(ia.bootToken, ib.bootToken, 'what the app computed before the snapshot stays shared (documented)');
    // Each answers by name from a third VM and from the host.
    for (const [name, ip] of [['twin-a', a.ip], ['twin-b', b.ip]] as const) {
      const viaThird = await guestGet<{ status: number; body: string }>(third.ip!, `/fetch?url=${encodeURIComponent(`http://${name}:8080/identity`)}`);
      assert.equal(viaThird.status, 200, JSON.stringify(viaThird));
      assert.equal((JSON.parse(viaThird.body) as Identity).hostname, name);
      assert.equal(await resolveOnHost(d, name), ip, `${name} resolves from the host`);
      assert.equal((await guestGet<Identity>(ip!, '/identity')).hostname, name);
    }
    for (const n of ['twin-a', 'twin-b', 'third']) await d.client.remove(n, { force: true });
  });

  it("a clone's create broadcasts nothing: an idle VM on the bridge receives no frame meanwhile", async () => {
    // 'first' (the template's source) sits idle on the bridge; frames the bridge sends it
    // are its tap's transmitted packets. The tap counts a frame when QEMU reads it, which an
    // idle guest under TCG may do seconds after the bridge sent it: so nothing in this test
    // talks to 'first' before both counts are taken (the positive controls come last).
    const idle = await d.client.get('first');
    const tap = `vt${idle.id.slice(0, 12)}`;
    const sent = async (): Promise<number> => {
      const [link] = JSON.parse((await run('ip', ['-n', d.netns, '-s', '-j', 'link', 'show', 'dev', tap])).stdout) as { stats64: { tx: { packets: number } } }[];
      return link!.stats64.tx.packets;
    };
    const atStart = await sent();
    const clones: VmView[] = [];
    for (let i = 0; i < 4; i++) clones.push(await d.client.run({ image: 'counter', name: `quiet-${i}`, env: { FLAVOUR: 'tpl' } }));
    const frames = (await sent()) - atStart;
    console.log(`# ${frames} frames reached an idle VM during ${4} template creates`);
    for (const c of clones) assert.equal(c.origin, 'template');
    // QEMU's RARP and the guest's gratuitous ARP used to reach every VM: 2-3 frames a create.
    assert.ok(frames < clones.length, `${frames} frames reached the idle VM during ${clones.length} creates`);
    // Two guests that never talked resolve each other: the bridge answers their ARP from the
    // namespace's neighbour table (proxy_arp on every tap), so no request floods the idle VM.
    const beforePairs = await sent();
    for (const [from, to] of [[clones[0]!, clones[1]!], [clones[2]!, clones[3]!]] as const) {
      const r = await guestGet<{ status: number; body: string }>(from.ip!, `/fetch?url=${encodeURIComponent(`http://${to.ip}:8080/identity`)}`);
      assert.equal((JSON.parse(r.body) as Identity).hostname, to.name, `${from.name} reaches ${to.name}: ${JSON.stringify(r)}`);
    }
    const pairFrames = (await sent()) - beforePairs;
    console.log(`# ${pairFrames} frames reached an idle VM while two pairs of guests first talked`);
    assert.ok(pairFrames < 2, `${pairFrames} frames reached the idle VM while two pairs of other guests first talked`);
    // Positive controls, after both counts: a connection to the idle VM sends it frames (its
    // close too, which must not fall into a count). Each clone answers the host, and reaches
    // the idle VM by name.
    const beforeControls = await sent();
    for (const c of clones) {
      assert.equal((await guestGet<Identity>(c.ip!, '/identity')).hostname, c.name);
      const viaClone = await guestGet<{ status: number; body: string }>(c.ip!, `/fetch?url=${encodeURIComponent('http://first:8080/identity')}`);
      assert.equal((JSON.parse(viaClone.body) as Identity).hostname, 'first', JSON.stringify(viaClone));
    }
    assert.ok((await sent()) > beforeControls, 'the idle VM does receive what is sent to it');
    for (const c of clones) await d.client.remove(c.name, { force: true });
  });

  it('suspend then start: the in-memory counter continues', async () => {
    const before = await count(src.ip!);
    const suspended = await d.client.suspend('src');
    assert.equal(suspended.state, 'suspended');
    assert.equal(suspended.pid, null);
    assert.deepEqual(await qemuProcesses(src.id), [], 'no VMM runs while suspended');
    assert.ok(!(await ramFiles(d)).some((f) => f.startsWith(src.id)), 'its RAM is no longer held on tmpfs');
    const started = await d.client.start('src');
    assert.equal(started.state, 'running');
    assert.equal(started.ip, src.ip, 'it keeps its address');
    assert.equal(await count(src.ip!), before + 1);
  });

  it('daemon SIGKILLed with paused, cloned and suspended VMs: all adopted or kept, nothing leaked', async () => {
    await d.client.snapshot('src', 'base');
    const clone = await d.client.run({ snapshot: 'base', name: 'kept-clone' });
    const pausedVm = await d.client.run({ image: 'counter', name: 'kept-paused', boot: 'cold' });
    await d.client.pause('kept-paused');
    const n = await count(src.ip!);
    await d.client.suspend('src');
    const pidsBefore = (await qemuProcesses(d.home)).sort();
    const tapsBefore = (await d.taps()).sort();
    const leasesBefore = d.leases();
    const ramBefore = await ramFiles(d);
    await d.kill('SIGKILL');
    await d.restart();
    assert.equal((await d.client.get('kept-paused')).state, 'paused');
    assert.equal((await d.client.get('kept-clone')).state, 'running');
    assert.equal((await d.client.get('src')).state, 'suspended');
    assert.deepEqual((await qemuProcesses(d.home)).sort(), pidsBefore, 'the same VMMs run, none added');
    assert.deepEqual((await d.taps()).sort(), tapsBefore);
    assert.deepEqual(d.leases(), leasesBefore);
    assert.deepEqual(await ramFiles(d), ramBefore);
    await assert.rejects(guestGet(pausedVm.ip!, '/', 1000), 'the paused VM is still paused');
    await d.client.resume('kept-paused');
    assert.equal(await count(pausedVm.ip!), 1);
    assert.equal(await count(clone.ip!), n, 'the clone answers (its count was n-1 at the snapshot)');
    assert.equal(await resolveOnHost(d, 'kept-clone'), clone.ip, 'its name is registered again');
    await d.client.start('src');
    assert.equal(await count(src.ip!), n + 1, 'the suspended VM resumes after the restart');
    await d.client.remove('kept-clone', { force: true });
    await d.client.remove('kept-paused', { force: true });
  });

  for (const step of STEP_NAMES.restore) {
    it(`a restore failing right after '${step}' leaves nothing`, async () => {
      await d.kill('SIGTERM');
      await d.restart({ UIGNITER_FAIL_AFTER_STEP: step });
      const leases = d.leases();
      const taps = (await d.taps()).sort();
      const pids = (await qemuProcesses(d.home)).sort();
      const ram = await ramFiles(d);
      const vmDirs = (await readdir(join(d.home, 'vms'))).sort();
      const err = await d.client.run({ snapshot: 'base', name: 'doomed' }).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof ApiError, `the restore failed (${String(err)})`);
      assert.match(err.message, new RegExp(`injected failure after step ${step}`));
      // Each resource, checked directly rather than through a general clean-up.
      await assert.rejects(d.client.get('doomed'), /not found|no VM/i, 'no record');
      assert.deepEqual(d.leases(), leases, 'no lease');
      assert.deepEqual((await d.taps()).sort(), taps, 'no tap');
      assert.deepEqual((await qemuProcesses(d.home)).sort(), pids, 'no VMM process');
      assert.deepEqual(await ramFiles(d), ram, 'no RAM file');
      assert.deepEqual((await readdir(join(d.home, 'vms'))).sort(), vmDirs, 'no VM directory');
      assert.equal(await resolveOnHost(d, 'doomed'), null, 'no DNS name');
      assert.deepEqual((await d.client.getSnapshot('base')).usedBy, [], 'no snapshot reference');
    });
  }

  it('restores again once the fault is gone', async () => {
    await d.kill('SIGTERM');
    await d.restart();
    const ok = await d.client.run({ snapshot: 'base', name: 'fine' });
    assert.equal(ok.state, 'running');
    assert.equal(await resolveOnHost(d, 'fine'), ok.ip);
    await d.client.remove('fine', { force: true });
  });
});
