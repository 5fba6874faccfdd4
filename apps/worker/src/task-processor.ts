import { HttpStatusError, isTransient } from '@uigniter-demo/common/http-client';
import { describeError, log } from '@uigniter-demo/common/log';
import { retry, sleep } from '@uigniter-demo/common/retry';
import type { StorageClient } from '@uigniter-demo/common/storage-client';
import type { TaskClient } from '@uigniter-demo/common/task-client';
import type { TaskRecord } from '@uigniter-demo/common/task-record';
import { applyFilter } from './filter.js';
import { LeaseKeeper } from './lease-keeper.js';
import { LeaseLostError, PermanentTaskError, ShutdownAbort } from './task-errors.js';

export type TaskOutcome = 'done' | 'failed' | 'lease_lost' | 'released';

export interface ProcessorOptions {
  tasks: TaskClient;
  storage: StorageClient;
  heartbeatMs: number;
  /** How long one step may keep retrying a peer that is down before the task is handed back. */
  stepDeadlineMs: number;
  /** Test-only pause while processing, to make a task slow enough to kill a worker mid-task. */
  delayMs: number;
}

/** Turns the answers that retrying cannot change into the errors that say why. */
function classify(err: unknown): unknown {
  if (err instanceof HttpStatusError) {
    if (err.status === 409) return new LeaseLostError(err.message);
    if (err.code === 'checksum_mismatch') return new PermanentTaskError(err.message);
  }
  return err;
}

/** Runs one leased task to an outcome; never throws. */
export class TaskProcessor {
  constructor(private readonly options: ProcessorOptions) {}

  private step<T>(what: string, taskId: number, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    return retry(
      async () => {
        try {
          return await fn();
        } catch (err) {
          throw classify(err);
        }
      },
      {
        signal,
        deadlineMs: this.options.stepDeadlineMs,
        capMs: 2000,
        shouldRetry: isTransient,
        onRetry: (err, attempt, delayMs) => {
          if (attempt === 0 || attempt % 10 === 0) {
            log(`task ${taskId}: ${what} failed (${describeError(err)}), retrying in ${delayMs} ms`);
          }
        },
      },
    );
  }

  async run(task: TaskRecord, shutdown: AbortSignal): Promise<TaskOutcome> {
    const { tasks, storage } = this.options;
    const token = task.leaseToken;
    if (token === null) {
      log(`task ${task.id} came without a lease token; skipping it`);
      return 'lease_lost';
    }
    log(`Working on task ${task.id}`);
    const keeper = new LeaseKeeper(tasks, task, token, this.options.heartbeatMs);
    keeper.start();
    const signal = AbortSignal.any([keeper.signal, shutdown]);
    try {
      const input = await this.step('fetch input', task.id, signal, () => storage.get(task.input, signal));
      if (input === undefined) throw new PermanentTaskError(`input ${task.input} is not in storage`);
      log(`processing ${task.input}`);
      if (this.options.delayMs > 0) await sleep(this.options.delayMs, signal);
      let output: Buffer;
      try {
        output = applyFilter(input);
      } catch (err) {
        throw new PermanentTaskError(`cannot filter ${task.input}: ${describeError(err)}`);
      }
      signal.throwIfAborted();
      const resultId = `result-${task.id}`;
      await this.step('store result', task.id, signal, () => storage.put(resultId, output, signal));
      await this.step('finish', task.id, signal, () => tasks.finish(task.id, token, resultId, signal));
      log(`done: task ${task.id} -> ${resultId}`);
      return 'done';
    } catch (err) {
      return await this.settle(task.id, token, err);
    } finally {
      await keeper.stop();
    }
  }

  /** Hands back a task leased but not started (e.g. leased just as shutdown began). */
  async handBack(task: TaskRecord, reason: Error): Promise<TaskOutcome> {
    if (task.leaseToken === null) return 'lease_lost';
    return this.settle(task.id, task.leaseToken, reason);
  }

  /** Hands the task back in the way its error calls for. */
  private async settle(taskId: number, token: string, err: unknown): Promise<TaskOutcome> {
    const { tasks } = this.options;
    const handBack = { deadlineMs: 3000, capMs: 500, shouldRetry: isTransient };
    try {
      if (err instanceof LeaseLostError) {
        log(`lease lost on task ${taskId}, dropping it: ${err.message}`);
        return 'lease_lost';
      }
      if (err instanceof PermanentTaskError) {
        log(`task ${taskId} cannot succeed: ${err.message}`);
        await retry(() => tasks.fail(taskId, token, err.message), handBack);
        return 'failed';
      }
      const why = err instanceof ShutdownAbort ? 'shutting down' : describeError(err);
      log(`releasing task ${taskId}: ${why}`);
      await retry(() => tasks.release(taskId, token), handBack);
      return 'released';
    } catch (handBackErr) {
      // The lease runs out by itself and another worker picks the task up.
      log(`could not hand back task ${taskId}: ${describeError(handBackErr)}`);
      return err instanceof PermanentTaskError ? 'failed' : 'released';
    }
  }
}
