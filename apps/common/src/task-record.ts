/**
 * `failed` extends the ready|leased|done life cycle for tasks that can never
 * succeed (input missing or undecodable, or too many crashed attempts), so a
 * poison task cannot keep every worker busy forever.
 */
export type TaskState = 'ready' | 'leased' | 'done' | 'failed';

/** A task as the db service returns it. Timestamps are ISO 8601 strings. */
export interface TaskRecord {
  id: number;
  state: TaskState;
  /** Storage id of the uploaded image. */
  input: string;
  /** Storage id of the processed image once done. */
  result: string | null;
  /** How many times the task was leased. */
  attempts: number;
  leaseOwner: string | null;
  leaseToken: string | null;
  leaseExpiresAt: string | null;
  createdAt: string;
  finishedAt: string | null;
  finishedBy: string | null;
  error: string | null;
}

export interface TaskStats {
  /** Tasks a worker may take now: never leased, released, or their lease expired. */
  ready: number;
  /** Tasks a worker holds (its lease has not expired). */
  leased: number;
  /** Tasks not done yet: ready + leased (the demo's workers scale on it). */
  pending: number;
  done: number;
  failed: number;
  total: number;
  /** Completed tasks per worker id. */
  byWorker: Record<string, number>;
}
