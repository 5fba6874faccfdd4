import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiError } from '../../src/client/client.js';
import type { ServiceView } from '../../src/api/schemas.js';
import { buildFixture, resolveOnHost as resolveAll, startTestDaemon, type TestDaemon } from '../daemon-harness.js';
import { cli, FIXTURES, makeShellApp, qemuProcesses, removeHome, waitFor } from '../helpers.js';

interface ServiceEvent {
  id: number;
  kind: string;
  message: string;
  data: Record<string, unknown> | null;
}

const service = (d: TestDaemon, name: string): Promise<ServiceView> => d.client.raw('GET', `/services/${name}`);
const events = async (d: TestDaemon, name: string): Promise<ServiceEvent[]> => (await d.client.raw<{ events: ServiceEvent[] }>('GET', `/services/${name}/events`)).events;
const until = (d: TestDaemon, name: string, ok: (s: ServiceView) => boolean, what: string, ms = 120_000): Promise<ServiceView> =>
  waitFor(async () => {
    const s = await service(d, name);
    return ok(s) ? s : null;
  }, ms, `${name}: ${what}`, 200);

async function get(url: string, timeoutMs = 20_000): Promise<{ status: number; replica: string | null; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, replica: res.headers.get('x-uigniter-replica'), body: await res.text() };
}

/**
 * Services on real guests: replicas kept and replaced, crash loops backing off, the
 * gateway waking a service at zero and riding out a replica's death under load, adoption
 * after a daemon SIGKILL, and bad specs refused.
 */
describe('services', () => {
  let d: TestDaemon;
  let crasher: string | undefined;

  before(async () => {
    d = await startTestDaemon();
    await buildFixture(d.home, join(FIXTURES, 'counter'), 'counter');
    crasher = await makeShellApp('echo crashing; exit 3');
    await buildFixture(d.home, crasher, 'crasher');
  });
  after(async () => {
    if (process.env.UIGNITER_TEST_LOG) await (await import('node:fs/promises')).writeFile(process.env.UIGNITER_TEST_LOG, d.log());
    await d?.destroy();
    if (crasher) await removeHome(crasher);
  });

  /** A counter service at zero (0..2 replicas), woken through its gateway, back to zero after `zeroAfterMs` without requests. */
  const serviceAtZero = (name: string, zeroAfterMs: number, more: Record<string, unknown>): Promise<ServiceView> =>
    d.client.raw<ServiceView>('POST', '/services', {
      name,
      image: 'counter',
      port: 8080,
      replicas: { min: 0, max: 2 },
      autoscale: { metric: 'inflight', target: 5, scaleToZeroAfterMs: zeroAfterMs, stableWindowMs: 2 * zeroAfterMs, panicWindowMs: 2000 },
      ...more,
    });

  it('bad service specs answer 4xx and change nothing', async () => {
    const base = { name: 'bad', image: 'counter', port: 8080, replicas: { min: 1, max: 2 } };
    for (const [body, field] of [
      [{ ...base, replicas: { min: 3, max: 2 } }, 'replicas.min'],
      [{ ...base, image: 'no-such-image' }, 'image'],
      [{ ...base, port: 70000 }, 'port'],
      [{ ...base, colour: 'red' }, undefined],
      [{ ...base, autoscale: { metric: 'inflight', target: 0 } }, 'autoscale.target'],
      [{ ...base, health: { liveness: { http: { path: '/x' }, tcp: true } } }, 'health.liveness'],
      [{ ...base, pool: { size: 1, warm: { path: 'x' } } }, 'pool.warm.path'],
      [{ ...base, pool: { size: 1, warm: { requests: 101 } } }, 'pool.warm.requests'],
      [{ ...base, scaleDown: 'sleep' }, 'scaleDown'],
    ] as [Record<string, unknown>, string | undefined][]) {
      const err = await d.client.raw('POST', '/services', body).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof ApiError && err.status >= 400 && err.status < 500, `${JSON.stringify(body)} is refused (${String(err)})`);
      if (field) assert.equal(err.field, field, JSON.stringify(body));
    }
    assert.deepEqual((await d.client.raw<{ services: unknown[] }>('GET', '/services')).services, []);
    assert.deepEqual(await d.client.list(), []);
    assert.deepEqual(await d.client.pools(), []);
  });

  it('the CLI creates, lists, scales and removes a service', async () => {
    const env = { env: { UIGNITER_HOST: d.url } };
    const created = await cli(d.home, ['service', 'create', 'from-cli', 'counter', '--port', '8080', '--replicas', '0:2', '--json'], env);
    assert.equal(created.code, 0, created.stderr);
    assert.deepEqual((JSON.parse(created.stdout) as ServiceView).replicas, { min: 0, max: 2 });
    const ls = await cli(d.home, ['service', 'ls'], env);
    assert.match(ls.stdout, /from-cli\s+counter:latest\s+0\.\.2/);
    const scaled = await cli(d.home, ['service', 'scale', 'from-cli', '0:1'], env);
    assert.equal(scaled.code, 0, scaled.stderr);
    assert.deepEqual((await service(d, 'from-cli')).replicas, { min: 0, max: 1 });
    const bad = await cli(d.home, ['service', 'scale', 'from-cli', '3:1'], env);
    assert.equal(bad.code, 2, 'min above max is bad input');
    assert.match(bad.stderr, /replicas\.min/);
    assert.equal((await cli(d.home, ['service', 'rm', 'from-cli'], env)).code, 0);
    await assert.rejects(service(d, 'from-cli'), (e: unknown) => e instanceof ApiError && e.status === 404);
  });

  it('keeps min 2 replicas; one whose app hangs fails liveness and is replaced', async () => {
    await d.client.raw('POST', '/services', {
      name: 'web',
      image: 'counter',
      port: 8080,
      replicas: { min: 2, max: 2 },
      health: { liveness: { http: { path: '/healthz' }, intervalMs: 500, timeoutMs: 2000, failures: 3 } },
    });
    const s = await until(d, 'web', (x) => x.status.ready === 2, '2 ready replicas');
    assert.equal(s.vms.length, 2);
    const ips = s.vms.map((v) => v.ip!).sort();
    await waitFor(async () => JSON.stringify(await resolveAll(d, 'web')) === JSON.stringify(ips), 5000, 'the service name to resolve to both replicas');
    const victim = s.vms[0]!;
    await get(`http://${victim.ip}:8080/hang`);
    const t0 = Date.now();
    const replaced = await until(d, 'web', (x) => x.status.ready === 2 && !x.vms.some((v) => v.name === victim.name), 'the hung replica replaced');
    const took = Date.now() - t0;
    const ev = await events(d, 'web');
    assert.ok(ev.some((e) => e.kind === 'liveness-failed' && e.message.includes(victim.name)), 'the event list says why');
    assert.ok(ev.some((e) => e.kind === 'replica-started'), 'and that a new one started');
    assert.ok(took < 60_000, `replaced within its liveness budget plus a boot (${took} ms)`);
    assert.equal(replaced.vms.length, 2);
  });

  it('a crash-looping image backs off: the events show growing delays, the host is not consumed', async () => {
    await d.client.raw('POST', '/services', { name: 'crashy', image: 'crasher', replicas: { min: 1, max: 1 } });
    const ev = await waitFor(
      async () => {
        const e = (await events(d, 'crashy')).filter((x) => x.kind === 'start-failed' || x.kind === 'restart');
        return e.length >= 3 ? e : null;
      },
      120_000,
      'three failed starts',
      500,
    );
    const delays = ev.map((e) => Number(e.data?.delayMs));
    for (let i = 1; i < delays.length; i++) assert.ok(delays[i]! > delays[i - 1]!, `delays grow: ${delays.join(', ')}`);
    const vms = (await d.client.list()).filter((v) => v.name.startsWith('crashy-'));
    assert.ok(vms.length <= 1, `at most its one replica exists at a time (${vms.length})`);
    await d.client.raw('DELETE', '/services/crashy');
  });

  it('a request to a service at zero is held by the gateway, answered, and the service goes back to zero', async () => {
    const s0 = await serviceAtZero('lazy', 3000, { pool: { size: 1 } });
    assert.ok(s0.gateway);
    await waitFor(async () => ((await d.client.pools())[0]?.ready.length ?? 0) === 1, 120_000, 'the pool spare');
    assert.equal((await service(d, 'lazy')).status.running, 0, 'positive control: nothing runs before the request');
    const r = await get(`${s0.gateway}/`);
    assert.equal(r.status, 200);
    assert.match(r.body, /"count":1/);
    const ev = await events(d, 'lazy');
    assert.ok(ev.some((e) => e.kind === 'woke'));
    assert.ok(ev.some((e) => e.kind === 'replica-started' && e.data?.origin === 'pool'), 'the replica came from the pool');
    await until(d, 'lazy', (x) => x.status.running === 0 && x.vms.length === 0, 'back to zero', 60_000);
    const after = await events(d, 'lazy');
    const down = after.find((e) => e.kind === 'scaled' && e.data?.to === 0);
    assert.ok(down, 'the scale-down is an event');
    // The scale-down drained the replica: its app got SIGTERM and exited by itself (the
    // counter app closes its server, then exits 0); killed, it would have no exit code.
    // (The record goes before the rest of the delete: the event may come a moment later.)
    const stopped = await waitFor(async () => {
      const e = (await events(d, 'lazy')).filter((x) => x.kind === 'replica-stopped');
      return e.length > 0 ? e : null;
    }, 30_000, `the replica-stopped event (events so far: ${JSON.stringify(after.map((e) => e.message))})`);
    assert.equal(stopped.length, 1, JSON.stringify(stopped));
    assert.equal(stopped[0]!.data?.exitCode, 0, stopped[0]!.message);
    assert.equal(stopped[0]!.data?.error, null, stopped[0]!.message);
    await d.client.raw('DELETE', '/services/lazy');
  });

  it("scaleDown 'pause': at zero the replica is paused, a request resumes the same one with its memory, and it pauses again", async () => {
    const s0 = await serviceAtZero('napper', 2000, { scaleDown: 'pause' });
    assert.equal(s0.scaleDown, 'pause');
    assert.equal(s0.status.running + s0.status.paused, 0, 'positive control: nothing runs or waits before the request');
    const first = await get(`${s0.gateway}/`);
    assert.equal(first.status, 200);
    const n = (JSON.parse(first.body) as { count: number }).count;
    const vm = await d.client.get((await service(d, 'napper')).vms[0]!.name);
    assert.equal(first.replica, vm.id);
    // Scaled to zero: the same VM, paused, its VMM still there; it does not answer.
    const atZero = await until(d, 'napper', (x) => x.status.running === 0 && x.status.paused === 1, 'paused at zero', 60_000);
    assert.deepEqual(atZero.vms.map((v) => [v.name, v.state]), [[vm.name, 'paused']]);
    assert.equal(atZero.status.ready, 0);
    assert.deepEqual(await qemuProcesses(vm.id), [vm.pid!], 'its VMM is kept');
    await assert.rejects(get(`http://${vm.ip}:8080/`, 1500), /abort|timeout/i, 'a paused replica does not answer');
    // A request resumes it: the count goes on from its memory (a new VM would start over).
    const again = await get(`${s0.gateway}/`);
    assert.equal(again.status, 200);
    assert.equal(again.replica, vm.id, 'the same replica answers');
    // n + 2: the probe above was held by the paused guest and is answered once it resumes.
    const m = (JSON.parse(again.body) as { count: number }).count;
    assert.ok(m === n + 1 || m === n + 2, `the count goes on from ${n} (got ${m})`);
    const ev = await events(d, 'napper');
    assert.equal(ev.filter((e) => e.kind === 'replica-started').length, 1, 'one replica was ever started');
    assert.ok(ev.some((e) => e.kind === 'replica-paused' && e.data?.vm === vm.name), JSON.stringify(ev.map((e) => e.message)));
    assert.ok(ev.some((e) => e.kind === 'replica-resumed' && e.data?.vm === vm.name), JSON.stringify(ev.map((e) => e.message)));
    assert.ok(!ev.some((e) => e.kind === 'replica-removed'), 'nothing was removed');
    await until(d, 'napper', (x) => x.status.running === 0 && x.status.paused === 1, 'paused again', 60_000);
    // Removing the service removes its paused replica with its VMM.
    await d.client.raw('DELETE', '/services/napper');
    assert.deepEqual((await d.client.list()).filter((v) => v.name.startsWith('napper-')), []);
    assert.deepEqual(await qemuProcesses(vm.id), [], 'the paused VMM is gone with the service');
  });

  it('200 concurrent requests through the gateway while a replica dies: no failed GET', async () => {
    const s = await until(d, 'web', (x) => x.status.ready === 2, '2 ready replicas');
    const victim = s.vms[1]!;
    const url = `${s.gateway}/slow?ms=100`;
    // The 51st request kills the victim's app; its own answer may be lost with the VM, and is
    // not what is measured: only the gateway's requests count.
    const kill = (): Promise<{ status: number; replica: null; body: string }> =>
      get(`http://${victim.ip}:8080/exit?code=1`).then(
        () => ({ status: 200, replica: null, body: '' }),
        () => ({ status: 200, replica: null, body: '' }),
      );
    const all = Array.from({ length: 200 }, (_, i) => (i === 50 ? kill() : get(url, 60_000)));
    const results = await Promise.all(all);
    const failed = results.filter((r) => r.status !== 200);
    assert.deepEqual(failed, [], 'every idempotent request answered 200');
    const ev = await waitFor(
      async () => {
        const e = await events(d, 'web');
        return e.some((x) => (x.kind === 'restart' || x.kind === 'replica-removed') && x.message.includes(victim.name)) ? e : null;
      },
      60_000,
      'the event that explains the replacement',
    );
    assert.ok(ev.length > 0);
    await until(d, 'web', (x) => x.status.ready === 2, 'two ready replicas again');
  });

  it('daemon SIGKILLed with a service running: its replicas are adopted, not duplicated', async () => {
    const before = await until(d, 'web', (x) => x.status.ready === 2, '2 ready replicas');
    const names = before.vms.map((v) => v.name).sort();
    const pids = (await qemuProcesses(d.home)).sort();
    await d.kill('SIGKILL');
    await d.restart();
    const after = await until(d, 'web', (x) => x.status.ready === 2, '2 ready replicas after the restart');
    assert.deepEqual(after.vms.map((v) => v.name).sort(), names);
    assert.deepEqual((await qemuProcesses(d.home)).sort(), pids);
    const r = await get(`${after.gateway}/`);
    assert.equal(r.status, 200, 'the gateway answers again on its port');
    assert.equal(after.gateway, before.gateway);
    await d.client.raw('DELETE', '/services/web');
    assert.deepEqual(await d.client.list(), []);
    assert.deepEqual(await resolveAll(d, 'web'), []);
  });
});
