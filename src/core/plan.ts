/**
 * A plan of undoable steps. `run` executes steps in order; when one fails, every step done
 * so far (in this and earlier `run` calls of the plan) is undone in reverse order, and the
 * error is thrown. Undo errors are reported, never thrown over the original error.
 */
export type UndoReason = 'rollback' | 'halt';

export interface Step<C> {
  readonly name: string;
  run(ctx: C): Promise<void>;
  /**
   * 'rollback': the plan failed, remove everything the step made.
   * 'halt': the VM stops normally, remove what only a running VM needs (keep its lease,
   * its volumes).
   */
  undo?(ctx: C, reason: UndoReason): Promise<void>;
}

export interface PlanHooks {
  /** Called after each step's run; throwing here counts as that step failing after it ran (fault injection). */
  afterStep?(name: string): void;
  onUndoError?(name: string, error: unknown): void;
}

export class Plan<C> {
  private readonly done: Step<C>[] = [];

  constructor(
    readonly ctx: C,
    private readonly hooks: PlanHooks = {},
  ) {}

  /** A plan whose steps already ran in an earlier process (a VM adopted after a restart). */
  static adopted<C>(ctx: C, steps: readonly Step<C>[], hooks: PlanHooks = {}): Plan<C> {
    const plan = new Plan(ctx, hooks);
    plan.done.push(...steps);
    return plan;
  }

  get completed(): readonly string[] {
    return this.done.map((s) => s.name);
  }

  async run(steps: readonly Step<C>[]): Promise<void> {
    for (const step of steps) {
      try {
        await step.run(this.ctx);
        this.done.push(step);
        this.hooks.afterStep?.(step.name);
      } catch (e) {
        await this.unwind('rollback');
        throw e;
      }
    }
  }

  /** Undoes every completed step, newest first. */
  async unwind(reason: UndoReason): Promise<void> {
    while (this.done.length > 0) {
      const step = this.done.pop()!;
      try {
        await step.undo?.(this.ctx, reason);
      } catch (e) {
        this.hooks.onUndoError?.(step.name, e);
      }
    }
  }
}
