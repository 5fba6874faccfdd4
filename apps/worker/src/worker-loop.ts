import { describeError, log } from '@uigniter-demo/common/log';
import { backoffDelay, sleep } from '@uigniter-demo/common/retry';
import type { TaskClient } from '@uigniter-demo/common/task-client';
import type { TaskRecord } from '@uigniter-demo/common/task-record';
import { ShutdownAbort } from './task-errors.js';
import type { TaskProcessor } from './task-processor.js';

export interface WorkerStats {
  worker: string;
  done: number;
  /** Tasks this worker started but did not complete (failed, lost or handed back). */
  failed: number;
  /** Id of the task in progress, if any. */
  current: number | null;
  /** Turns of the loop that took no task because the worker was a pool's spare. */
  spareTurns: number;
}

/** Leases tasks one at a time and processes them until stopped. */
export class WorkerLoop {
  private done = 0;
  private failed = 0;
  private current: number | null = null;
  private spareTurns = 0;
  private stopping = false;
  private readonly idle = new AbortController();
  private readonly taskAbort = new AbortController();
  private loop: Promise<void> | undefined;

  /**
   * `workerId` is asked at every use: a worker restored from a snapshot or template gets its
   * own hostname after the restore, and a name read once at start-up would be its template's.
   * `isSpare` is asked at every turn: a pool's spare runs (restored, warmed) before it is
   * paused, and a task it leased then would be held by a paused VM until its lease expired;
   * it reads the db's counts instead.
   */
  constructor(
    private readonly workerId: () => string,
    private readonly tasks: TaskClient,
    private readonly processor: TaskProcessor,
    private readonly pollMs: number,
    private readonly isSpare: () => boolean = () => false,
  ) {}

  stats(): WorkerStats {
    return { worker: this.workerId(), done: this.done, failed: this.failed, current: this.current, spareTurns: this.spareTurns };
  }

  start(): void {
    this.loop = this.run();
  }

  private async pause(ms: number): Promise<void> {
    await sleep(ms, this.idle.signal).catch(() => undefined);
  }

  private async run(): Promise<void> {
    let failures = 0;
    let idle = false;
    let spare = false;
    while (!this.stopping) {
      if (this.isSpare()) {
        if (!spare) log(`a pool's spare (${this.workerId()}): no task until it is handed out`);
        spare = true;
        this.spareTurns++;
        // Reads the db's counts instead: the same lookup, connection and client code as a
        // lease, run (and, under TCG, translated) before the pause, not on the first task.
        await this.tasks.stats().catch(() => undefined);
        await this.pause(this.pollMs);
        continue;
      }
      spare = false;
      let task: TaskRecord | undefined;
      try {
        // Not abortable on purpose: a lease granted as the request is cut would sit unused until it expires.
        task = await this.tasks.leaseNext(this.workerId());
        if (failures > 0) log(`db reachable again after ${failures} failed attempt(s)`);
        failures = 0;
      } catch (err) {
        if (failures === 0 || failures % 20 === 0) log(`cannot lease a task: ${describeError(err)}; retrying`);
        await this.pause(backoffDelay(failures++, 100, 2000));
        continue;
      }
      if (!task) {
        if (!idle) log('idle: no task ready');
        idle = true;
        await this.pause(this.pollMs);
        continue;
      }
      idle = false;
      if (this.stopping) {
        await this.processor.handBack(task, new ShutdownAbort('shutting down before starting it'));
        break;
      }
      this.current = task.id;
      let outcome;
      try {
        outcome = await this.processor.run(task, this.taskAbort.signal);
      } catch (err) {
        // run() settles every expected error itself; this is a bug, but the loop must go on.
        log(`unexpected error on task ${task.id}: ${describeError(err)}`);
        outcome = 'released';
      }
      this.current = null;
      if (outcome === 'done') this.done++;
      else this.failed++;
    }
  }

  /**
   * Stops leasing. A task in progress gets `graceMs` to finish; after that
   * it is aborted and released so another worker takes it at once.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.idle.abort();
    if (!this.loop) return;
    const inProgress = this.current;
    const finished = await Promise.race([this.loop.then(() => true), sleep(graceMs).then(() => false)]);
    if (!finished) {
      log(`task ${inProgress ?? '?'} did not finish within ${graceMs} ms of shutdown`);
      this.taskAbort.abort(new ShutdownAbort('shutdown grace period over'));
      await this.loop;
    }
  }
}
