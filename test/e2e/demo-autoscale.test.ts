import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createWorkerService, runAutoscaledBatch, serviceEvents, WORKER_SERVICE } from '../../src/demo/autoscale.js';
import { autoscaleProblems } from '../../src/demo/autoscale-demo.js';
import { bootDemo, buildDemoImages } from '../../src/demo/demo-app.js';
import { MasterClient } from '../../src/demo/master-client.js';
import { startTestDaemon, type TestDaemon } from '../daemon-harness.js';
import { freePort, ROOT } from '../helpers.js';

const LEASE_SEC = 10;
/** Under TCG on 2 cores: see the report for what fits. */
const IMAGES = Number(process.env.DEMO_AUTOSCALE_IMAGES ?? 50);
const MAX_WORKERS = 3;
/** Each of the two batches of the pause test. */
const PAUSE_IMAGES = 10;

/**
 * The demo's workers as a service scaled by the db's backlog (http-json on the db's /stats,
 * read by the daemon on the host): 0 workers, a batch arrives, workers start, every result is
 * right and done exactly once, and the workers go back to 0.
 */
describe('demo application with autoscaled workers', () => {
  let d: TestDaemon;
  let master: MasterClient;
  let dbIp: string;
  const log = (l: string): void => void process.stderr.write(`  | ${l}\n`);

  before(async () => {
    d = await startTestDaemon();
    await buildDemoImages({ client: d.client, appsDir: join(ROOT, 'apps'), log });
    const port = await freePort();
    const vms = await bootDemo({ client: d.client, appsDir: '', workers: 0, masterPort: port, leaseSec: LEASE_SEC, log });
    dbIp = vms.find((v) => v.name === 'db')!.ip!;
    master = new MasterClient(`http://127.0.0.1:${port}`);
    await createWorkerService({ client: d.client, dbIp, maxWorkers: MAX_WORKERS, leaseSec: LEASE_SEC, target: 2 });
  });
  after(async () => {
    await d?.client.raw('DELETE', `/services/${WORKER_SERVICE}`).catch(() => undefined);
    await d?.destroy();
  });

  it(`${IMAGES} images: workers 0 -> >=1 -> 0, every pixel right, every task done exactly once`, { timeout: 900_000 }, async () => {
    const svc0 = await d.client.raw<{ status: { desired: number; running: number } }>('GET', `/services/${WORKER_SERVICE}`);
    assert.deepEqual([svc0.status.desired, svc0.status.running], [0, 0], 'no worker before the batch');
    const started = Date.now();
    const r = await runAutoscaledBatch({ client: d.client, master, dbIp, images: IMAGES, log, seed: 500, size: 32, zeroTimeoutMs: 180_000 });
    log(`batch ${r.batch.seconds.toFixed(1)} s, peak ready ${r.peakReady}, desired ${r.peakDesired}, back to zero after ${r.backToZeroSec?.toFixed(1)} s, per worker ${JSON.stringify(r.batch.perWorker)}`);

    assert.deepEqual(autoscaleProblems(r, IMAGES), []);
    assert.deepEqual(r.batch.mismatches, []);
    // Exactly once: the db's done count and the workers' counts both grew by the batch.
    assert.equal(r.statsAfter.done - r.statsBefore.done, IMAGES);
    assert.equal(r.statsAfter.total - r.statsBefore.total, IMAGES);
    assert.equal(Object.values(r.batch.perWorker).reduce((a, b) => a + b, 0), IMAGES);
    assert.ok(Object.keys(r.batch.perWorker).every((w) => /^worker-[0-9a-f]{6}$/.test(w)), JSON.stringify(r.batch.perWorker));

    // 0 -> >=1 -> 0, from the service's own series.
    const points = r.points;
    assert.ok(points.length > 0, 'the service has a metrics series');
    const firstUp = points.findIndex((p) => p.ready >= 1);
    assert.ok(firstUp > 0, 'a worker became ready during the batch');
    assert.equal(points[0]!.running, 0, 'the series starts at zero workers');
    assert.ok(points.slice(firstUp).some((p) => p.desired === 0 && p.running === 0), 'and ends back at zero');
    const peak = Math.max(...points.map((p) => p.ready));
    log(`peak ready replicas in the series: ${peak}${peak < 2 ? ' (below 2)' : ''}`);
    const over = points.filter((p) => p.running > MAX_WORKERS);
    assert.deepEqual(over, [], `never more than max (${MAX_WORKERS}) workers running`);
    assert.ok(points.some((p) => p.decision && p.decision.from === 0 && p.decision.to >= 1), 'a decision up from zero');
    assert.ok(points.some((p) => p.decision && p.decision.to === 0), 'a decision back to zero');

    const events = await serviceEvents(d.client);
    assert.ok(events.some((e) => e.kind === 'replica-started'), JSON.stringify(events.map((e) => e.kind)));
    assert.ok(events.some((e) => e.kind === 'replica-removed'), JSON.stringify(events.map((e) => e.kind)));
    const svc = await d.client.raw<{ status: { desired: number; ready: number; running: number }; vms: unknown[] }>('GET', `/services/${WORKER_SERVICE}`);
    assert.deepEqual(svc.status, { desired: 0, ready: 0, running: 0, paused: 0 });
    log(`whole run ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  it("scaleDown 'pause': at zero the workers are paused, not removed; the next batch resumes them; every task done once", { timeout: 600_000 }, async () => {
    type Svc = { status: { desired: number; ready: number; running: number; paused: number }; vms: { name: string; state: string }[] };
    const svc = (): Promise<Svc> => d.client.raw<Svc>('GET', `/services/${WORKER_SERVICE}`);
    await createWorkerService({ client: d.client, dbIp, maxWorkers: MAX_WORKERS, leaseSec: LEASE_SEC, target: 2, scaleDown: 'pause' });
    const batch = (seed: number): ReturnType<typeof runAutoscaledBatch> =>
      runAutoscaledBatch({ client: d.client, master, dbIp, images: PAUSE_IMAGES, log, seed, size: 32, zeroTimeoutMs: 180_000 });
    const first = await batch(900);
    assert.deepEqual(autoscaleProblems(first, PAUSE_IMAGES), []);
    const atZero = await svc();
    assert.equal(atZero.status.running, 0);
    assert.ok(atZero.status.paused >= 1, `workers are kept paused at zero: ${JSON.stringify(atZero.status)}`);
    assert.ok(atZero.vms.every((v) => v.state === 'paused'), JSON.stringify(atZero.vms));
    const ev1 = await serviceEvents(d.client);
    // Workers pull their tasks, which the daemon cannot see: only a scale to zero (nothing
    // pending) pauses one; above zero they are drained and removed.
    const pausedEvents = ev1.filter((e) => e.kind === 'replica-paused');
    assert.equal(pausedEvents.length, atZero.status.paused, JSON.stringify(ev1.map((e) => `${e.at.slice(11, 23)} ${e.kind} ${e.message}`), null, 1));
    for (const e of pausedEvents) assert.match(e.message, /scaled to 0\b/);
    const kept = atZero.vms.map((v) => v.name);

    const second = await batch(950);
    assert.deepEqual(autoscaleProblems(second, PAUSE_IMAGES), []);
    const lastId = Math.max(...ev1.map((e) => e.id));
    const ev2 = (await serviceEvents(d.client)).filter((e) => e.id > lastId);
    const resumed = ev2.filter((e) => e.kind === 'replica-resumed').map((e) => String(e.data?.vm));
    assert.ok(resumed.length > 0 && resumed.every((n) => kept.includes(n)), `the paused workers were resumed: ${JSON.stringify(ev2.map((e) => e.message))}`);
    assert.ok(Object.keys(second.batch.perWorker).some((w) => kept.includes(w)), `a resumed worker did tasks: ${JSON.stringify(second.batch.perWorker)}`);
    assert.ok((await svc()).vms.every((v) => v.state === 'paused'), 'back at zero, paused again');
    await d.client.raw('DELETE', `/services/${WORKER_SERVICE}`);
    assert.deepEqual((await d.client.list()).filter((v) => v.name.startsWith(`${WORKER_SERVICE}-`)), [], 'removing the service removes its paused workers');
  });
});
