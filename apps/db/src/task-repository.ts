import type Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import type { TaskRecord, TaskStats } from '@uigniter-demo/common/task-record';
import { toTaskRecord, type TaskRow } from './task-row.js';

/** What a lease-holder's request did. */
export type LeaseChange =
  | { outcome: 'changed'; task: TaskRecord }
  /** A repeat of a request that already took effect: nothing changed. */
  | { outcome: 'unchanged'; task: TaskRecord }
  | { outcome: 'not_found' }
  /** The token no longer holds the task (expired and re-leased, released, or finished by another). */
  | { outcome: 'lease_lost'; task: TaskRecord };

export interface LeaseNextResult {
  task: TaskRecord;
  /** The lease this one replaced because it had expired, if any. */
  expiredOwner: string | null;
}

export interface RepositoryOptions {
  leaseMs: number;
  /** After this many expired leases the task is marked failed instead of leased again. */
  maxAttempts: number;
  now?: () => number;
}

/**
 * Task life cycle on SQLite. Every state change is one statement or one
 * IMMEDIATE transaction, and every change by a lease holder is conditioned on
 * its lease token, which is what makes each task complete exactly once.
 */
export class TaskRepository {
  private readonly now: () => number;
  private readonly statements;

  constructor(
    private readonly db: Database.Database,
    private readonly options: RepositoryOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.statements = {
      insert: db.prepare<[string, number]>(
        `INSERT INTO tasks (state, input, created_at) VALUES ('ready', ?, ?) ON CONFLICT (input) DO NOTHING`,
      ),
      byId: db.prepare<[number], TaskRow>(`SELECT * FROM tasks WHERE id = ?`),
      byInput: db.prepare<[string], TaskRow>(`SELECT * FROM tasks WHERE input = ?`),
      nextOpen: db.prepare<[number], TaskRow>(
        `SELECT * FROM tasks
          WHERE state IN ('ready', 'leased') AND (state = 'ready' OR lease_expires_at <= ?)
          ORDER BY id LIMIT 1`,
      ),
      lease: db.prepare<[string, string, number, number]>(
        `UPDATE tasks SET state = 'leased', lease_owner = ?, lease_token = ?, lease_expires_at = ?,
                attempts = attempts + 1
          WHERE id = ?`,
      ),
      giveUp: db.prepare<[string, number, number]>(
        `UPDATE tasks SET state = 'failed', error = ?, finished_at = ?, lease_expires_at = NULL WHERE id = ?`,
      ),
      extend: db.prepare<[number, number, string]>(
        `UPDATE tasks SET lease_expires_at = ? WHERE id = ? AND state = 'leased' AND lease_token = ?`,
      ),
      finish: db.prepare<[string, number, number, string]>(
        `UPDATE tasks SET state = 'done', result = ?, finished_at = ?, finished_by = lease_owner,
                lease_expires_at = NULL
          WHERE id = ? AND state = 'leased' AND lease_token = ?`,
      ),
      fail: db.prepare<[string, number, number, string]>(
        `UPDATE tasks SET state = 'failed', error = ?, finished_at = ?, finished_by = lease_owner,
                lease_expires_at = NULL
          WHERE id = ? AND state = 'leased' AND lease_token = ?`,
      ),
      release: db.prepare<[number, string]>(
        `UPDATE tasks SET state = 'ready', lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
          WHERE id = ? AND state = 'leased' AND lease_token = ?`,
      ),
      // A lease that expired counts as ready: the next /task/next takes it over (leases
      // expire lazily), and a scaler that read it as held would wait for a worker that is gone.
      countByState: db.prepare<[number], { state: string; n: number }>(
        `SELECT CASE WHEN state = 'leased' AND lease_expires_at <= ? THEN 'ready' ELSE state END AS state, COUNT(*) AS n
           FROM tasks GROUP BY 1`,
      ),
      doneByWorker: db.prepare<[], { worker: string; n: number }>(
        `SELECT finished_by AS worker, COUNT(*) AS n FROM tasks
          WHERE state = 'done' AND finished_by IS NOT NULL GROUP BY finished_by ORDER BY finished_by`,
      ),
    };
  }

  get(id: number): TaskRecord | undefined {
    const row = this.statements.byId.get(id);
    return row ? toTaskRecord(row) : undefined;
  }

  /** Creates a ready task for `input`; a repeat for the same input returns the existing task. */
  create(input: string): { task: TaskRecord; created: boolean } {
    const info = this.statements.insert.run(input, this.now());
    const row = this.statements.byInput.get(input);
    if (!row) throw new Error(`task for ${input} vanished after insert`);
    return { task: toTaskRecord(row), created: info.changes === 1 };
  }

  /** Leases the oldest task that is ready or whose lease expired, or returns undefined. */
  leaseNext(worker: string): LeaseNextResult | undefined {
    return this.db
      .transaction((): LeaseNextResult | undefined => {
        const now = this.now();
        for (;;) {
          const row = this.statements.nextOpen.get(now);
          if (!row) return undefined;
          if (row.state === 'leased' && row.attempts >= this.options.maxAttempts) {
            this.statements.giveUp.run(
              `gave up after ${row.attempts} attempts whose leases expired (last holder ${row.lease_owner})`,
              now,
              row.id,
            );
            continue;
          }
          this.statements.lease.run(worker, randomUUID(), now + this.options.leaseMs, row.id);
          const leased = this.statements.byId.get(row.id) as TaskRow;
          return { task: toTaskRecord(leased), expiredOwner: row.state === 'leased' ? row.lease_owner : null };
        }
      })
      .immediate();
  }

  heartbeat(id: number, leaseToken: string): LeaseChange {
    return this.db
      .transaction((): LeaseChange => {
        const changes = this.statements.extend.run(this.now() + this.options.leaseMs, id, leaseToken).changes;
        return this.outcome(id, changes === 1, () => false);
      })
      .immediate();
  }

  finish(id: number, leaseToken: string, result: string): LeaseChange {
    return this.db
      .transaction((): LeaseChange => {
        const changes = this.statements.finish.run(result, this.now(), id, leaseToken).changes;
        return this.outcome(id, changes === 1, (row) => row.state === 'done' && row.lease_token === leaseToken);
      })
      .immediate();
  }

  fail(id: number, leaseToken: string, error: string): LeaseChange {
    return this.db
      .transaction((): LeaseChange => {
        const changes = this.statements.fail.run(error, this.now(), id, leaseToken).changes;
        return this.outcome(id, changes === 1, (row) => row.state === 'failed' && row.lease_token === leaseToken);
      })
      .immediate();
  }

  release(id: number, leaseToken: string): LeaseChange {
    return this.db
      .transaction((): LeaseChange => {
        const changes = this.statements.release.run(id, leaseToken).changes;
        return this.outcome(id, changes === 1, () => false);
      })
      .immediate();
  }

  /** Classifies a conditional update after the fact, inside the same transaction. */
  private outcome(id: number, changed: boolean, isRepeat: (row: TaskRow) => boolean): LeaseChange {
    const row = this.statements.byId.get(id);
    if (!row) return { outcome: 'not_found' };
    const task = toTaskRecord(row);
    if (changed) return { outcome: 'changed', task };
    if (isRepeat(row)) return { outcome: 'unchanged', task };
    return { outcome: 'lease_lost', task };
  }

  stats(): TaskStats {
    const stats: TaskStats = { ready: 0, leased: 0, pending: 0, done: 0, failed: 0, total: 0, byWorker: {} };
    for (const { state, n } of this.statements.countByState.all(this.now())) {
      if (state === 'ready' || state === 'leased' || state === 'done' || state === 'failed') stats[state] = n;
      stats.total += n;
    }
    stats.pending = stats.ready + stats.leased;
    for (const { worker, n } of this.statements.doneByWorker.all()) stats.byWorker[worker] = n;
    return stats;
  }
}
