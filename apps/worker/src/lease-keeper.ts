import { HttpStatusError } from '@uigniter-demo/common/http-client';
import { describeError, log } from '@uigniter-demo/common/log';
import { sleep } from '@uigniter-demo/common/retry';
import type { TaskClient } from '@uigniter-demo/common/task-client';
import type { TaskRecord } from '@uigniter-demo/common/task-record';
import { LeaseLostError } from './task-errors.js';

/**
 * Extends a task's lease while it is being processed. When the db says the
 * lease is gone, `signal` aborts with a LeaseLostError so the work in
 * progress stops instead of racing the worker that took the task over.
 */
export class LeaseKeeper {
  private readonly lost = new AbortController();
  private readonly stopper = new AbortController();
  private loop: Promise<void> | undefined;
  readonly signal: AbortSignal = this.lost.signal;

  constructor(
    private readonly tasks: TaskClient,
    private readonly task: TaskRecord,
    private readonly leaseToken: string,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const { id } = this.task;
    for (;;) {
      try {
        await sleep(this.intervalMs, this.stopper.signal);
      } catch {
        return;
      }
      try {
        await this.tasks.heartbeat(id, this.leaseToken, this.stopper.signal);
      } catch (err) {
        if (this.stopper.signal.aborted) return;
        if (err instanceof HttpStatusError && (err.status === 409 || err.status === 404)) {
          this.lost.abort(new LeaseLostError(`heartbeat refused: ${err.message}`));
          return;
        }
        // The db may be restarting: the lease is still ours until it expires, keep trying.
        log(`heartbeat for task ${id} failed: ${describeError(err)}`);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    await this.loop;
  }
}
