import type { TaskRecord, TaskState } from '@uigniter-demo/common/task-record';

/** A row of the `tasks` table; times are epoch milliseconds. */
export interface TaskRow {
  id: number;
  state: TaskState;
  input: string;
  result: string | null;
  attempts: number;
  lease_owner: string | null;
  lease_token: string | null;
  lease_expires_at: number | null;
  created_at: number;
  finished_at: number | null;
  finished_by: string | null;
  error: string | null;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export function toTaskRecord(row: TaskRow): TaskRecord {
  return {
    id: row.id,
    state: row.state,
    input: row.input,
    result: row.result,
    attempts: row.attempts,
    leaseOwner: row.lease_owner,
    leaseToken: row.lease_token,
    leaseExpiresAt: iso(row.lease_expires_at),
    createdAt: new Date(row.created_at).toISOString(),
    finishedAt: iso(row.finished_at),
    finishedBy: row.finished_by,
    error: row.error,
  };
}
