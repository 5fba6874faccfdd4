import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TaskRecord, TaskStats } from '@uigniter-demo/common/task-record';
import type { NativeCluster } from '@uigniter-demo/native';
import { call, Cleanup, cluster, getStats, getTask, postJson, waitFor, type ErrorReply } from './helpers.js';

const LEASE_SEC = 1;

async function create(db: string, input: string): Promise<TaskRecord> {
  const reply = await postJson<TaskRecord>(`${db}/task`, { input });
  assert.equal(reply.status, 201, reply.text);
  return reply.body;
}

async function leaseNext(db: string, worker: string): Promise<TaskRecord | undefined> {
  const reply = await call<TaskRecord>(`${db}/task/next?worker=${worker}`);
  if (reply.status === 204) return undefined;
  assert.equal(reply.status, 200, reply.text);
  return reply.body;
}

function token(task: TaskRecord): string {
  assert.ok(task.leaseToken, `task ${task.id} has a lease token`);
  return task.leaseToken;
}

/** Leases until it gets `id` (older tasks from other tests may come first and are finished). */
async function leaseUntil(db: string, worker: string, id: number): Promise<TaskRecord> {
  for (;;) {
    const task = await leaseNext(db, worker);
    assert.ok(task, `expected to lease task ${id}, got nothing`);
    if (task.id === id) return task;
    await postJson(`${db}/task/${task.id}/finish`, { leaseToken: token(task), result: `result-${task.id}` });
  }
}

describe('db', () => {
  const cleanup = new Cleanup();
  let c: NativeCluster;
  let db: string;
  after(() => cleanup.run());
  before(async () => {
    c = await cluster(cleanup, {
      services: ['kvstore', 'db'],
      leaseSec: LEASE_SEC,
      serviceEnv: { db: { MAX_ATTEMPTS: '3' } },
    });
    db = c.urls.db ?? '';
  });

  it('validates bodies, ids and parameters with 400 naming the field', async () => {
    const cases: Array<[Promise<{ status: number; body: unknown }>, string | undefined]> = [
      [postJson(`${db}/task`, {}), 'input'],
      [postJson(`${db}/task`, { input: 42 }), 'input'],
      [postJson(`${db}/task`, { input: '../etc/passwd' }), 'input'],
      [postJson(`${db}/task`, { input: '' }), 'input'],
      [call(`${db}/task`, { method: 'POST', body: '{not json' }), undefined],
      [call(`${db}/task`, { method: 'POST', body: '[1,2]' }), undefined],
      [call(`${db}/task/abc`), 'id'],
      [call(`${db}/task/1.5`), 'id'],
      [call(`${db}/task/next`), 'worker'],
      [call(`${db}/task/next?worker=bad%20name`), 'worker'],
      [postJson(`${db}/task/1/finish`, { result: 'result-1' }), 'leaseToken'],
      [postJson(`${db}/task/1/finish`, { leaseToken: 'abc' }), 'result'],
      [postJson(`${db}/task/1/heartbeat`, { leaseToken: 7 }), 'leaseToken'],
      [postJson(`${db}/task/1/release`, {}), 'leaseToken'],
    ];
    for (const [pending, field] of cases) {
      const reply = (await pending) as { status: number; body: ErrorReply };
      assert.equal(reply.status, 400, JSON.stringify(reply.body));
      assert.equal(typeof reply.body.error.code, 'string');
      assert.equal(reply.body.error.field, field);
    }
    const unknown = await call<ErrorReply>(`${db}/task/999999`);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'not_found');
    assert.equal((await postJson(`${db}/task/999999/finish`, { leaseToken: 'x', result: 'r' })).status, 404);
  });

  it('creates tasks with increasing ids; the same input twice is one task', async () => {
    const a = await create(db, 'input-create-a');
    const b = await create(db, 'input-create-b');
    assert.ok(b.id > a.id);
    assert.equal(a.state, 'ready');
    assert.equal(a.attempts, 0);
    assert.equal(a.result, null);
    const again = await postJson<TaskRecord>(`${db}/task`, { input: 'input-create-a' });
    assert.equal(again.status, 200);
    assert.equal(again.body.id, a.id);
    assert.deepEqual(await getTask(db, a.id), a);
  });

  it('leases oldest first, re-leases an expired lease, and completes each task exactly once', async () => {
    const a = await create(db, 'input-lease-a');
    const b = await create(db, 'input-lease-b');
    const first = await leaseUntil(db, 'w1', a.id);
    assert.equal(first.state, 'leased');
    assert.equal(first.leaseOwner, 'w1');
    assert.equal(first.attempts, 1);
    const second = await leaseNext(db, 'w2');
    assert.equal(second?.id, b.id, 'the next oldest goes to the next worker');
    assert.equal(await leaseNext(db, 'w3'), undefined, 'nothing else is available: 204');

    // w1 goes silent; after LEASE_SEC its task is up for grabs again.
    await new Promise((resolve) => setTimeout(resolve, LEASE_SEC * 1000 + 150));
    const taken = await waitFor('the expired lease', () => leaseNext(db, 'w3'));
    assert.ok(taken.id === a.id || taken.id === b.id);
    const takenOver = taken.id === a.id ? first : (second as TaskRecord);
    assert.equal(taken.leaseOwner, 'w3');
    assert.equal(taken.attempts, 2);
    assert.notEqual(token(taken), token(takenOver));

    const stale = await postJson<ErrorReply>(`${db}/task/${taken.id}/finish`, {
      leaseToken: token(takenOver),
      result: `result-stale`,
    });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.error.code, 'lease_lost');
    const untouched = await getTask(db, taken.id);
    assert.equal(untouched.state, 'leased');
    assert.equal(untouched.leaseOwner, 'w3');
    assert.equal(untouched.result, null);

    const done = await postJson<TaskRecord>(`${db}/task/${taken.id}/finish`, {
      leaseToken: token(taken),
      result: `result-${taken.id}`,
    });
    assert.equal(done.status, 200);
    assert.equal(done.body.state, 'done');
    assert.equal(done.body.finishedBy, 'w3');
    assert.equal(done.body.result, `result-${taken.id}`);
    assert.ok(done.body.finishedAt);

    const repeat = await postJson<TaskRecord>(`${db}/task/${taken.id}/finish`, {
      leaseToken: token(taken),
      result: 'result-other',
    });
    assert.equal(repeat.status, 200, 'a repeated finish with the same token is accepted');
    assert.deepEqual(repeat.body, done.body, 'and changes nothing');
    const lateStale = await postJson<ErrorReply>(`${db}/task/${taken.id}/finish`, {
      leaseToken: token(takenOver),
      result: 'result-late',
    });
    assert.equal(lateStale.status, 409, 'the old holder cannot finish it after the fact');
    assert.deepEqual(await getTask(db, taken.id), done.body);
    assert.equal((await postJson(`${db}/task/${taken.id}/release`, { leaseToken: token(taken) })).status, 409);
  });

  it('heartbeats keep a lease; release makes the task ready again', async () => {
    const task = await create(db, 'input-heartbeat');
    const leased = await leaseUntil(db, 'w1', task.id);
    const until = Date.now() + LEASE_SEC * 1000 * 2;
    while (Date.now() < until) {
      const beat = await postJson<TaskRecord>(`${db}/task/${task.id}/heartbeat`, { leaseToken: token(leased) });
      assert.equal(beat.status, 200);
      assert.equal(await leaseNext(db, 'w2'), undefined, 'a live lease is not handed out');
      await new Promise((resolve) => setTimeout(resolve, (LEASE_SEC * 1000) / 4));
    }
    const wrong = await postJson<ErrorReply>(`${db}/task/${task.id}/heartbeat`, {
      leaseToken: '00000000-0000-0000-0000-000000000000',
    });
    assert.equal(wrong.status, 409);
    const released = await postJson<TaskRecord>(`${db}/task/${task.id}/release`, { leaseToken: token(leased) });
    assert.equal(released.status, 200);
    assert.equal(released.body.state, 'ready');
    assert.equal(released.body.leaseOwner, null);
    const again = await leaseNext(db, 'w2');
    assert.equal(again?.id, task.id);
    assert.equal(again?.attempts, 2);
    assert.equal((await postJson(`${db}/task/${task.id}/heartbeat`, { leaseToken: token(leased) })).status, 409);
    await postJson(`${db}/task/${task.id}/finish`, { leaseToken: token(again as TaskRecord), result: 'result-hb' });
  });

  it('marks a task failed after MAX_ATTEMPTS expired leases, or when a worker reports failure', async () => {
    const poison = await create(db, 'input-poison');
    for (let attempt = 1; attempt <= 3; attempt++) {
      const leased = await waitFor(`lease ${attempt} of the poison task`, async () => {
        const task = await leaseNext(db, `crasher${attempt}`);
        if (task && task.id !== poison.id) {
          await postJson(`${db}/task/${task.id}/finish`, { leaseToken: token(task), result: `result-${task.id}` });
          return undefined;
        }
        return task;
      }, 5000);
      assert.equal(leased.attempts, attempt);
    }
    await new Promise((resolve) => setTimeout(resolve, LEASE_SEC * 1000 + 150));
    assert.equal(await leaseNext(db, 'w9'), undefined, 'the exhausted task is not leased a 4th time');
    const failed = await getTask(db, poison.id);
    assert.equal(failed.state, 'failed');
    assert.match(failed.error ?? '', /gave up after 3 attempts/);

    const bad = await create(db, 'input-undecodable');
    const leased = await leaseUntil(db, 'w1', bad.id);
    const reported = await postJson<TaskRecord>(`${db}/task/${bad.id}/fail`, {
      leaseToken: token(leased),
      error: 'not a PNG',
    });
    assert.equal(reported.status, 200);
    assert.equal(reported.body.state, 'failed');
    assert.equal(reported.body.error, 'not a PNG');
    assert.equal(reported.body.finishedBy, 'w1');
  });

  it('hands every task to exactly one of many concurrent workers', async () => {
    const ids = new Set<number>();
    for (let i = 0; i < 40; i++) ids.add((await create(db, `input-concurrent-${i}`)).id);
    const finishedBy = new Map<number, string[]>();
    const worker = async (name: string): Promise<void> => {
      for (;;) {
        const task = await leaseNext(db, name);
        if (!task) return;
        const reply = await postJson(`${db}/task/${task.id}/finish`, { leaseToken: token(task), result: `result-${task.id}` });
        assert.equal(reply.status, 200);
        finishedBy.set(task.id, [...(finishedBy.get(task.id) ?? []), name]);
      }
    };
    await Promise.all(['c1', 'c2', 'c3', 'c4', 'c5', 'c6'].map(worker));
    for (const id of ids) {
      assert.equal(finishedBy.get(id)?.length, 1, `task ${id} finished exactly once`);
      assert.equal((await getTask(db, id)).state, 'done');
    }
    const stats = await getStats(db);
    const byConcurrent = Object.entries(stats.byWorker)
      .filter(([name]) => name.startsWith('c'))
      .reduce((sum, [, n]) => sum + n, 0);
    assert.equal(byConcurrent, 40);
  });

  it('reports consistent /stats', async () => {
    const stats = await getStats(db);
    assert.equal(stats.total, stats.ready + stats.leased + stats.done + stats.failed);
    const doneByWorkers = Object.values(stats.byWorker).reduce((sum, n) => sum + n, 0);
    assert.equal(doneByWorkers, stats.done);
    assert.ok(stats.done >= 40);
  });

  it('counts an expired lease as ready in /stats, and pending as ready + leased', async () => {
    const task = await create(db, 'input-expired-stats');
    const held = await leaseUntil(db, 'w-gone', task.id);
    const during = await getStats(db);
    assert.ok(during.leased >= 1, `the lease is counted as held while it lasts: ${JSON.stringify(during)}`);
    assert.equal(during.pending, during.ready + during.leased);
    // The holder goes silent. Leases expire lazily (nobody asked for a task yet), yet /stats
    // must show the task as ready: an autoscaler at zero workers reads it to wake one.
    await new Promise((resolve) => setTimeout(resolve, LEASE_SEC * 1000 + 150));
    assert.equal((await getTask(db, task.id)).state, 'leased', 'the row itself still says leased');
    const after = await getStats(db);
    assert.equal(after.leased, 0, `no lease younger than ${LEASE_SEC} s is left: ${JSON.stringify(after)}`);
    assert.equal(after.ready, during.ready + during.leased, 'each expired lease moved to ready');
    assert.equal(after.pending, during.pending, 'pending is unchanged: the task is still not done');
    assert.equal(after.total, after.ready + after.leased + after.done + after.failed);
    const taken = await leaseNext(db, 'w-next');
    assert.equal(taken?.id, task.id, 'and the next worker takes it over');
    assert.notEqual(token(taken), token(held));
    await postJson(`${db}/task/${task.id}/finish`, { leaseToken: token(taken), result: `result-${task.id}` });
  });
});

describe('db durability', () => {
  it('loses nothing when killed with SIGKILL and restarted on the same DATA_DIR', async (t) => {
    const c = await cluster(t, { services: ['kvstore', 'db'], leaseSec: 60 });
    const db = c.urls.db ?? '';
    const created: TaskRecord[] = [];
    for (let i = 0; i < 30; i++) created.push(await create(db, `input-durable-${i}`));
    const leased: TaskRecord[] = [];
    for (let i = 0; i < 10; i++) leased.push((await leaseNext(db, `w${i % 2}`)) as TaskRecord);
    for (const task of leased.slice(0, 5)) {
      const reply = await postJson(`${db}/task/${task.id}/finish`, { leaseToken: token(task), result: `result-${task.id}` });
      assert.equal(reply.status, 200);
    }
    const before = await Promise.all(created.map((task) => getTask(db, task.id)));
    const statsBefore = await getStats(db);
    assert.deepEqual(
      { ready: statsBefore.ready, leased: statsBefore.leased, done: statsBefore.done, total: statsBefore.total },
      { ready: 20, leased: 5, done: 5, total: 30 },
    );

    await c.kill('db', 'SIGKILL');
    await c.restart('db');

    const afterRestart = await Promise.all(created.map((task) => getTask(db, task.id)));
    assert.deepEqual(afterRestart, before, 'every record is exactly as acknowledged before the kill');
    assert.deepEqual(await getStats(db), statsBefore as TaskStats);
    // Leases survive too: the holder can still finish its task.
    const holder = leased[7] as TaskRecord;
    const finish = await postJson<TaskRecord>(`${db}/task/${holder.id}/finish`, {
      leaseToken: token(holder),
      result: `result-${holder.id}`,
    });
    assert.equal(finish.status, 200);
    assert.equal(finish.body.finishedBy, holder.leaseOwner);
    const next = await create(db, 'input-after-restart');
    assert.ok(next.id > Math.max(...created.map((task) => task.id)), 'ids keep increasing after a restart');
  });
});
