import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { makeSamplePng } from '@uigniter-demo/common/sample-png';
import { bootDemo, buildDemoImages, processBatch } from '../../src/demo/demo-app.js';
import { MasterClient, type TaskInfo } from '../../src/demo/master-client.js';
import { comparePixels } from '../../src/demo/pipeline-check.js';
import { startTestDaemon, type TestDaemon } from '../daemon-harness.js';
import { awaitEvent, freePort, qemuProcesses, ROOT, waitFor } from '../helpers.js';
import { join } from 'node:path';

const LEASE_SEC = 6;

/**
 * The modular application as microVMs on real QEMU guests: results checked pixel by pixel
 * against the filter run here, a worker VM killed mid-task, the db VM stopped and started.
 */
describe('demo application as microVMs', () => {
  let d: TestDaemon;
  let master: MasterClient;
  const log = (l: string): void => void process.stderr.write(`  | ${l}\n`);

  before(async () => {
    d = await startTestDaemon();
    await buildDemoImages({ client: d.client, appsDir: join(ROOT, 'apps'), log });
    const port = await freePort();
    await bootDemo({ client: d.client, appsDir: '', workers: 2, masterPort: port, leaseSec: LEASE_SEC, log });
    master = new MasterClient(`http://127.0.0.1:${port}`);
  });
  after(async () => {
    await d?.destroy();
  });

  it('processes 10 images with 2 workers; every output pixel equals the filter run on the host', async () => {
    const r = await processBatch(master, 10, { log, seed: 100 });
    assert.deepEqual(r.mismatches, []);
    assert.equal(Object.values(r.perWorker).reduce((a, b) => a + b, 0), 10);
    assert.ok(Object.keys(r.perWorker).every((w) => /^worker-[12]$/.test(w)), JSON.stringify(r.perWorker));
  });

  it("the dashboard's live feed carries the pipeline's counts, as the db answers them", async () => {
    const db = await master.stats();
    assert.ok(db.done >= 10, `positive control: the batch is done (${JSON.stringify(db)})`);
    const seen = await awaitEvent(`${d.url}/events`, (e) => (e.event === 'pipeline' ? (e.data as { vm: string; stats: { done: number; total: number } }) : null), 15_000);
    assert.equal(seen.vm, 'db');
    assert.equal(seen.stats.done, db.done);
    assert.equal(seen.stats.total, db.total);
  });

  it('bad input to the master VM: a clear 4xx, nothing stored', async () => {
    const before = await master.stats();
    const storageIp = (await d.client.get('storage')).ip!;
    const objects = async (): Promise<string[]> => ((await (await fetch(`http://${storageIp}:9002/object`)).json()) as { objects: string[] }).objects;
    const objectsBefore = await objects();
    const post = async (body: Buffer, type = 'image/png'): Promise<{ status: number; code: string }> => {
      const form = new FormData();
      form.append('image', new Blob([body], { type }), 'x.png');
      const res = await fetch(`${master.base}/task`, { method: 'POST', body: form });
      return { status: res.status, code: ((await res.json()) as { error: { code: string } }).error.code };
    };
    assert.deepEqual(await post(Buffer.from('GIF89a not a png at all'), 'image/gif'), { status: 415, code: 'not_png' });
    assert.deepEqual(await post(Buffer.alloc(9 * 1024 * 1024, 1)), { status: 413, code: 'too_large' });
    const unknown = await fetch(`${master.base}/task/999999`);
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'not_found');
    assert.deepEqual(await master.stats(), before, 'no task created');
    assert.deepEqual(await objects(), objectsBefore, 'no object stored');
  });

  it('a worker VM killed in the middle of a task: the task still completes, exactly once, by another worker', async () => {
    // Only a slow worker is up, so it certainly holds the task when it dies.
    await d.client.stop('worker-1');
    await d.client.stop('worker-2');
    await d.client.run({ image: 'worker', name: 'worker-slow', env: { LEASE_SEC: String(LEASE_SEC), WORKER_DELAY_MS: '120000' } });
    const before = await master.stats();
    const input = makeSamplePng(4242, 40, 30);
    const id = await master.upload(input);
    const leased = await waitFor(async () => {
      const t = (await master.task(id)) as TaskInfo & { leaseOwner: string | null };
      return t.state === 'leased' && t.leaseOwner === 'worker-slow' ? t : null;
    }, 60_000, 'the slow worker to lease the task');
    assert.equal(leased.attempts, 1);

    const slow = await d.client.get('worker-slow');
    process.kill(slow.pid!, 'SIGKILL'); // the VM dies, mid-task, without warning
    const dead = await waitFor(async () => {
      const v = await d.client.get('worker-slow');
      return v.state === 'failed' ? v : null;
    }, 20_000, 'the daemon to see the worker VM die');
    assert.match(dead.error ?? '', /ended unexpectedly/);
    assert.ok(!(await qemuProcesses(d.home)).includes(slow.pid!));

    await d.client.start('worker-1');
    const [done] = await master.waitAll([id], 90_000);
    assert.equal(done!.state, 'done');
    assert.equal(done!.finishedBy, 'worker-1');
    assert.equal(done!.attempts, 2, 'leased once by the dead worker, once by the one that finished it');
    assert.equal(comparePixels(input, await master.result(id)), null);
    const afterStats = await master.stats();
    assert.equal(afterStats.done, before.done + 1, 'completed exactly once');
    assert.equal(afterStats.total, before.total + 1);
    assert.equal((afterStats.byWorker['worker-slow'] ?? 0), 0);
    await d.client.remove('worker-slow');
  });

  it('the db VM stopped and started loses no task (its data is on a volume)', async () => {
    const before = await master.stats();
    assert.ok(before.total >= 11);
    const stopped = await d.client.stop('db');
    assert.equal(stopped.state, 'stopped');
    assert.equal(stopped.exitCode, 0, `db exit status; its console:\n${(await d.client.logs('db', 30))}`);
    const started = await d.client.start('db');
    assert.equal(started.ip, stopped.ip);
    const afterRestart = await waitFor(async () => {
      const s = await master.stats().catch(() => null);
      return s && s.total === before.total ? s : null;
    }, 60_000, 'the db to answer with all its tasks');
    assert.equal(afterRestart.done, before.done);
    assert.match(await d.client.logs('db'), new RegExp(`opened /data/tasks.sqlite: ${before.total} tasks`));
    // And the pipeline goes on.
    const more = await processBatch(master, 2, { log, seed: 900 });
    assert.deepEqual(more.mismatches, []);
    assert.equal((await master.stats()).total, before.total + 2);
  });
});
