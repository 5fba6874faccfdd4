import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeSamplePng } from '@uigniter-demo/common/sample-png';
import type { TaskRecord } from '@uigniter-demo/common/task-record';
import { applyFilter, decodeRgba } from '@uigniter-demo/worker/filter';
import type { NativeCluster } from '@uigniter-demo/native';
import { call, cluster, getBytes, getStats, getTask, logsOf, postJson, uploadFile, waitFor } from './helpers.js';

async function upload(c: NativeCluster, png: Buffer): Promise<number> {
  const reply = await uploadFile(c.urls.master ?? '', png);
  assert.equal(reply.status, 201, reply.text);
  return reply.body.id;
}

function waitForState(c: NativeCluster, id: number, state: TaskRecord['state'], timeoutMs = 30_000): Promise<TaskRecord> {
  return waitFor(
    `task ${id} to be ${state}`,
    async () => {
      const task = await getTask(c.urls.db ?? '', id);
      return task.state === state ? task : undefined;
    },
    timeoutMs,
  );
}

/** The processed image equals the filter run here, pixel by pixel. */
async function assertResultMatches(c: NativeCluster, id: number, input: Buffer): Promise<void> {
  const result = await getBytes(`${c.urls.master}/task/${id}/result`);
  assert.equal(result.status, 200);
  assert.equal(result.headers.get('content-type'), 'image/png');
  const actual = decodeRgba(result.bytes);
  const expected = decodeRgba(applyFilter(input));
  assert.equal(actual.width, expected.width);
  assert.equal(actual.height, expected.height);
  assert.ok(Buffer.from(actual.data).equals(Buffer.from(expected.data)), `task ${id}: pixels differ from applyFilter`);
}

function linesOf(c: NativeCluster, name: string): string[] {
  return c.service(name).lines;
}

describe('pipeline', () => {
  it('processes 10 uploads with 2 workers, each result equal to applyFilter(input)', async (t) => {
    const c = await cluster(t, { workers: 2 });
    const inputs = new Map<number, Buffer>();
    for (let i = 0; i < 10; i++) {
      const png = makeSamplePng(100 + i, 40 + i * 13, 25 + i * 7);
      inputs.set(await upload(c, png), png);
    }
    for (const id of inputs.keys()) await waitForState(c, id, 'done');
    for (const [id, png] of inputs) await assertResultMatches(c, id, png);

    const stats = await getStats(c.urls.master ?? '');
    assert.equal(stats.done, 10);
    assert.equal(stats.total, 10);
    assert.equal(Object.values(stats.byWorker).reduce((sum, n) => sum + n, 0), 10);
    for (const id of inputs.keys()) {
      const task = await getTask(c.urls.db ?? '', id);
      assert.equal(task.attempts, 1, `task ${id} was leased once`);
      assert.equal(task.result, `result-${id}`);
      const worker = task.finishedBy ?? '';
      assert.ok(['w1', 'w2'].includes(worker));
      const lines = linesOf(c, worker);
      const start = lines.findIndex((line) => line.endsWith(`Working on task ${id}`));
      assert.ok(start >= 0, `${worker} logged "Working on task ${id}"`);
      assert.ok(lines.slice(start).some((line) => line.includes(`processing ${task.input}`)));
      assert.ok(lines.slice(start).some((line) => line.includes(`done: task ${id}`)));
    }
    const workerStats = await Promise.all(
      c.workers().map(async (w) => (await call<{ done: number; failed: number }>(`${w.url}/stats`)).body),
    );
    assert.equal(workerStats.reduce((sum, s) => sum + s.done, 0), 10);
    assert.equal(workerStats.reduce((sum, s) => sum + s.failed, 0), 0);
    const listing = (await call(`${c.urls.kvstore}/`)).text;
    for (const name of ['dbendpoint', 'storageendpoint', 'masterendpoint', 'worker-w1endpoint', 'worker-w2endpoint']) {
      assert.match(listing, new RegExp(`^${name}=127\\.0\\.0\\.1:\\d+$`, 'm'));
    }
  });

  it('completes a task exactly once when its worker is killed with SIGKILL mid-task', async (t) => {
    const c = await cluster(t, { leaseSec: 1 });
    const slow = await c.addWorker({ id: 'slow', env: { WORKER_DELAY_MS: '60000' } });
    const png = makeSamplePng(7, 90, 60);
    const id = await upload(c, png);
    const leased = await waitForState(c, id, 'leased');
    assert.equal(leased.leaseOwner, 'slow');
    await waitFor('the slow worker to start processing', () =>
      slow.lines.some((line) => line.includes(`processing ${leased.input}`)),
    );
    await c.kill('slow', 'SIGKILL');

    await c.addWorker({ id: 'rescuer' });
    const done = await waitForState(c, id, 'done');
    assert.equal(done.finishedBy, 'rescuer');
    assert.equal(done.attempts, 2);
    await assertResultMatches(c, id, png);

    // The dead worker's lease token can no longer complete the task.
    const late = await postJson<{ error: { code: string } }>(`${c.urls.db}/task/${id}/finish`, {
      leaseToken: leased.leaseToken,
      result: 'result-from-the-dead',
    });
    assert.equal(late.status, 409);
    assert.equal(late.body.error.code, 'lease_lost');
    assert.deepEqual(await getTask(c.urls.db ?? '', id), done, 'the refused finish changed nothing');
    const stats = await getStats(c.urls.db ?? '');
    assert.deepEqual(stats.byWorker, { rescuer: 1 });
    assert.equal(stats.done, 1);
  });

  it("a pool's spare (named pool-<pool>-<n>) takes no task; a worker with its own name does", async (t) => {
    const c = await cluster(t, { leaseSec: 30 });
    const spare = await c.addWorker({ id: 'pool-83dd804e-584e21' });
    await waitFor("the spare's first turn", () => spare.lines.some((line) => line.includes("a pool's spare (pool-83dd804e-584e21)")));
    const png = makeSamplePng(9, 40, 40);
    const id = await upload(c, png);
    const turns = async (): Promise<number> => (await call<{ spareTurns: number }>(`${spare.url}/stats`)).body.spareTurns;
    const from = await turns();
    // Two whole turns of its loop with the task ready: a worker would have leased it.
    await waitFor('two more turns of the spare', async () => (await turns()) >= from + 2);
    const waiting = await getTask(c.urls.db ?? '', id);
    assert.deepEqual({ state: waiting.state, attempts: waiting.attempts }, { state: 'ready', attempts: 0 });
    // The control: a worker under its own name takes it at once.
    await c.addWorker({ id: 'worker-4a613a' });
    const done = await waitForState(c, id, 'done');
    assert.equal(done.finishedBy, 'worker-4a613a');
    assert.equal(done.attempts, 1);
    await assertResultMatches(c, id, png);
  });

  it('refuses the late finish of a frozen worker that comes back after its lease was taken over', async (t) => {
    const c = await cluster(t, { leaseSec: 1 });
    const zombie = await c.addWorker({ id: 'zombie', env: { WORKER_DELAY_MS: '1500' } });
    const png = makeSamplePng(8, 50, 50);
    const id = await upload(c, png);
    const leased = await waitForState(c, id, 'leased');
    assert.equal(leased.leaseOwner, 'zombie');
    await waitFor('the zombie to start processing', () =>
      zombie.lines.some((line) => line.includes(`processing ${leased.input}`)),
    );
    zombie.signal('SIGSTOP');
    try {
      await c.addWorker({ id: 'healthy' });
      const done = await waitForState(c, id, 'done');
      assert.equal(done.finishedBy, 'healthy');
      zombie.signal('SIGCONT');
      await waitFor(
        'the zombie to notice it lost the lease',
        () => zombie.lines.some((line) => line.includes(`lease lost on task ${id}`)),
        15_000,
      );
      assert.deepEqual(await getTask(c.urls.db ?? '', id), done, 'the zombie changed nothing');
      const zombieStats = (await call<{ done: number; failed: number }>(`${zombie.url}/stats`)).body;
      assert.deepEqual({ done: zombieStats.done, failed: zombieStats.failed }, { done: 0, failed: 1 });
      assert.deepEqual((await getStats(c.urls.db ?? '')).byWorker, { healthy: 1 });
      await assertResultMatches(c, id, png);
      assert.ok(zombie.running, 'losing a lease does not crash the worker');
    } finally {
      zombie.signal('SIGCONT');
    }
  });

  it('on SIGTERM a worker finishes a short task, or releases a long one, and exits 0', async (t) => {
    const c = await cluster(t, { leaseSec: 30 });
    const quick = await c.addWorker({ id: 'quick', env: { WORKER_DELAY_MS: '1500' } });
    const shortPng = makeSamplePng(9, 30, 30);
    const shortId = await upload(c, shortPng);
    await waitFor('quick to start', () => quick.lines.some((line) => line.includes('processing')));
    await quick.kill('SIGTERM');
    assert.equal(await quick.exited(), 0);
    const shortTask = await getTask(c.urls.db ?? '', shortId);
    assert.equal(shortTask.state, 'done', 'finished within the grace period');
    assert.equal(shortTask.finishedBy, 'quick');

    const stuck = await c.addWorker({ id: 'stuck', env: { WORKER_DELAY_MS: '60000' } });
    const longPng = makeSamplePng(10, 30, 30);
    const longId = await upload(c, longPng);
    await waitFor('stuck to start', () => stuck.lines.some((line) => line.includes('processing')));
    const stoppedAt = Date.now();
    await stuck.kill('SIGTERM');
    assert.equal(await stuck.exited(), 0);
    assert.ok(Date.now() - stoppedAt < 9000, 'gave up after the 5 s grace period');
    const released = await getTask(c.urls.db ?? '', longId);
    assert.equal(released.state, 'ready', 'released at once rather than left to expire (lease is 30 s)');
    assert.equal(released.leaseOwner, null);

    await c.addWorker({ id: 'after' });
    const done = await waitForState(c, longId, 'done');
    assert.equal(done.finishedBy, 'after');
    await assertResultMatches(c, longId, longPng);
  });

  it('workers ride out a db crash and restart without losing or duplicating work', async (t) => {
    const c = await cluster(t, { workers: 2, leaseSec: 2, workerEnv: { WORKER_DELAY_MS: '300' } });
    const inputs = new Map<number, Buffer>();
    for (let i = 0; i < 6; i++) {
      const png = makeSamplePng(200 + i, 32, 32);
      inputs.set(await upload(c, png), png);
    }
    await waitFor('work to be under way', async () => (await getStats(c.urls.db ?? '')).leased > 0);
    await c.kill('db', 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 700));
    await c.restart('db');
    try {
      for (const id of inputs.keys()) await waitForState(c, id, 'done', 40_000);
    } catch (err) {
      throw new Error(`${String(err)}\n${logsOf(c)}`);
    }
    for (const [id, png] of inputs) await assertResultMatches(c, id, png);
    const stats = await getStats(c.urls.db ?? '');
    assert.equal(stats.done, 6);
    assert.equal(stats.total, 6);
    for (const worker of c.workers()) assert.ok(worker.running, `${worker.name} survived the db outage`);
  });
});
