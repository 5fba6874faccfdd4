import { setTimeout as sleep } from 'node:timers/promises';
import type { GuestEvent } from '../../guest/console-events.js';
import { messageOf, UigniterError } from '../errors.js';
import type { KeyedMutex } from '../keyed-mutex.js';
import type { VmRecord } from '../models.js';
import { Plan, type PlanHooks } from '../plan.js';
import type { BootPlan } from '../plans/boot-plans.js';
import type { Step } from '../plan.js';
import { newBootContext, type BootContext, type BootDeps, type BootMarks, type RestoreSource } from '../steps/boot-context.js';
import { waitReady } from '../steps/wait-ready.js';
import { transition } from '../vm-state.js';
import type { VmRecords } from './vm-records.js';

export type WaitFor = 'ready' | 'launched';

/** A VM whose VMM this process watches. */
interface LiveVm {
  phase: 'booting' | 'running' | 'stopping';
  plan: Plan<BootContext>;
  cancel: AbortController;
  exitEvent: Extract<GuestEvent, { event: 'exit' }> | null;
  /** Settles when the boot reached ready or was rolled back. */
  booted: Promise<void>;
  settleBoot: () => void;
}

/** How a live VM ends: asked to shut down (forced off after a deadline), or killed at once. */
export type Ending = { graceful: true; timeoutMs: number } | { graceful: false };

/**
 * Runs boot plans and watches the VMs they bring up: a VMM that ends on its own is
 * noticed, its plan halted and the VM marked; a stop ends the VMM and halts the plan.
 * Callers hold the VM's lock; the supervisor takes it only for exits it sees itself.
 */
export class Supervisor {
  private readonly live = new Map<string, LiveVm>();

  constructor(
    private readonly records: VmRecords,
    private readonly deps: BootDeps,
    private readonly locks: KeyedMutex,
    private readonly hooks: PlanHooks,
    private readonly runDir: (id: string) => string,
  ) {}

  has(id: string): boolean {
    return this.live.has(id);
  }

  ids(): string[] {
    return [...this.live.keys()];
  }

  /** The live VM's boot context (its process, lease, tap), for commands that act on a running VM. */
  context(id: string): BootContext | null {
    return this.live.get(id)?.plan.ctx ?? null;
  }

  /** Runs a plan's launch phase under the caller's lock, then its ready phase (awaited or not). */
  async boot(vm: VmRecord, plan: BootPlan, wait: WaitFor, marks: BootMarks, restore: RestoreSource | null = null): Promise<VmRecord> {
    const cancel = new AbortController();
    const ctx = newBootContext(this.deps, vm, this.runDir(vm.id), cancel.signal, marks, restore);
    const run = new Plan(ctx, this.hooks);
    try {
      await run.run(plan.launch);
    } catch (e) {
      this.markFailed(ctx.vm, e);
      throw e;
    }
    const live = this.track(vm.id, run, 'booting', cancel);
    const ready = this.finishBoot(vm.id, live, plan.ready);
    if (wait === 'ready') {
      await ready;
    } else {
      ready.catch((e: unknown) => this.deps.log(`VM ${vm.name} did not boot: ${messageOf(e)}`));
    }
    return ctx.vm;
  }

  /** Takes over a VM whose steps ran in an earlier daemon process. */
  async adopt(ctx: BootContext, done: readonly Step<BootContext>[], redo: readonly Step<BootContext>[], cancel: AbortController): Promise<void> {
    const run = Plan.adopted(ctx, done, this.hooks);
    await run.run(redo);
    const vm = ctx.vm;
    const live = this.track(vm.id, run, vm.state === 'booting' ? 'booting' : 'running', cancel);
    if (vm.state === 'booting') {
      // The old daemon did not see it become ready; waiting for it again is what it did.
      void this.finishBoot(vm.id, live, [waitReady]).catch((e: unknown) => this.deps.log(`adopted VM ${vm.name} did not boot: ${messageOf(e)}`));
    }
  }

  private track(id: string, plan: Plan<BootContext>, phase: LiveVm['phase'], cancel: AbortController): LiveVm {
    let settle!: () => void;
    const booted = new Promise<void>((r) => (settle = r));
    const live: LiveVm = { phase, plan, cancel, exitEvent: null, booted, settleBoot: settle };
    if (phase !== 'booting') settle();
    this.live.set(id, live);
    this.watch(id, live);
    return live;
  }

  private async finishBoot(id: string, live: LiveVm, steps: readonly Step<BootContext>[]): Promise<void> {
    const ctx = live.plan.ctx;
    try {
      await live.plan.run(steps);
      live.phase = 'running';
      if (ctx.vm.bootMs !== null) this.records.emit('booted', ctx.vm, ctx.vm.bootMs);
    } catch (e) {
      // The plan has rolled back: the VMM is gone, the tap deleted, a new lease returned.
      this.live.delete(id);
      if (live.cancel.signal.aborted) {
        this.records.save(transition(this.records.find(id) ?? ctx.vm, 'stopped', this.deps.clock.now(), this.stoppedFacts(null, null)));
        return;
      }
      this.markFailed(this.records.find(id) ?? ctx.vm, e, live.exitEvent?.code ?? null);
      throw e;
    } finally {
      live.settleBoot();
    }
  }

  markFailed(vm: VmRecord, e: unknown, exitCode: number | null = null): void {
    const current = this.records.find(vm.id);
    if (!current) return;
    const state = current.state === 'creating' || current.state === 'booting' || current.state === 'running' || current.state === 'paused' || current.state === 'stopping' ? 'failed' : current.state;
    this.records.save(transition(current, state, this.deps.clock.now(), this.stoppedFacts(exitCode, messageOf(e))));
  }

  stoppedFacts(exitCode: number | null, error: string | null): Partial<VmRecord> {
    return { pid: null, tap: null, exitCode, error, stoppedAt: this.deps.clock.now().toISOString() };
  }

  /** Follows the VM's exit events and its VMM's end, for VMs that end on their own. */
  private watch(id: string, live: LiveVm): void {
    const ctx = live.plan.ctx;
    ctx.tail?.on('event', (e) => {
      if (e.event === 'exit') live.exitEvent = e;
    });
    void ctx.process?.exited.then(() =>
      this.locks.run(id, async () => {
        if (this.live.get(id) !== live || live.phase !== 'running') return; // a stop or the boot handles it
        await ctx.tail?.pump();
        this.live.delete(id);
        await this.halt(id, live);
        const code = live.exitEvent?.code ?? null;
        const vm = this.records.find(id);
        if (!vm) return;
        const clean = code === 0;
        const error = clean ? null : code === null ? 'the VM ended unexpectedly' : `the app exited with status ${code}`;
        this.records.save(transition(vm, clean ? 'stopped' : 'failed', this.deps.clock.now(), this.stoppedFacts(code, error)));
        this.deps.log(`VM ${vm.name} ended on its own (${error ?? 'status 0'})`);
      }),
    );
  }

  /**
   * Ends a live VM (caller holds its lock) and halts its plan: tap, proxies and name go,
   * the lease and volumes stay. A VM still booting has its boot cancelled instead; the
   * answer is null then (the boot has settled the record).
   */
  /** `timedOut`: the guest was asked to stop and did not within the timeout, so it was forced off. */
  async end(id: string, how: Ending, paused = false): Promise<{ exitCode: number | null; timedOut: boolean } | null> {
    const live = this.live.get(id);
    if (!live) throw new UigniterError('internal', `VM ${id} is not live`);
    if (live.phase === 'booting') {
      live.cancel.abort();
      await live.booted;
      return null;
    }
    live.phase = 'stopping';
    const proc = live.plan.ctx.process!;
    let forced = !how.graceful;
    let timedOut = false;
    if (how.graceful && how.timeoutMs > 0) {
      // A paused guest cannot hear the stop request.
      if (paused) await proc.resume().catch(() => undefined);
      await proc.requestStop().catch(() => undefined);
      // The guest init gives the app the VM's own stop timeout; allow a little more here.
      const ended = await Promise.race([proc.exited.then(() => true), sleep(how.timeoutMs + 1000).then(() => false)]);
      if (!ended) forced = timedOut = true;
    } else {
      forced = true;
    }
    if (forced) await proc.kill();
    await proc.exited;
    await live.plan.ctx.tail?.pump();
    this.live.delete(id);
    await this.halt(id, live);
    return { exitCode: live.exitEvent?.code ?? null, timedOut };
  }

  /**
   * Undoes the plan's steps for a stopped VMM. The plan's copy of the record is the one its
   * steps last saved; commands have changed the record since (paused, stopping): the undo
   * works on the stored one, so it never writes an old state back.
   */
  private async halt(id: string, live: LiveVm): Promise<void> {
    const stored = this.records.find(id);
    if (stored) live.plan.ctx.vm = stored;
    await live.plan.unwind('halt');
  }

  /** Daemon shutdown without stopping VMs: stop watching, leave them for the next daemon. */
  async release(): Promise<void> {
    for (const [id, live] of this.live) {
      live.plan.ctx.process?.detach();
      await live.plan.ctx.tail?.stop();
      await live.plan.ctx.unpublish?.();
      this.live.delete(id);
    }
  }
}
