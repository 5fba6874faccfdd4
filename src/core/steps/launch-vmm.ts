import { ConsoleTail } from '../../guest/console-tail.js';
import type { Step } from '../plan.js';
import { transition } from '../vm-state.js';
import type { BootContext } from './boot-context.js';

/** Starts the VMM process; the console is followed from this boot's first byte. */
export const launchVmm: Step<BootContext> = {
  name: 'launch-vmm',
  async run(ctx) {
    const launch = ctx.launch!;
    const offset = await ConsoleTail.sizeOf(launch.consoleLog);
    ctx.tail = new ConsoleTail(launch.consoleLog, { offset, pollMs: 50 }).start();
    ctx.launchedAt = ctx.marks.vmmStart = performance.now();
    ctx.process = await ctx.deps.vmm.launch(launch);
    ctx.marks.vmmLaunched = performance.now();
    const now = ctx.deps.clock.now();
    ctx.vm = transition(ctx.vm, 'booting', now, {
      pid: ctx.process.pid,
      boots: ctx.vm.boots + 1,
      consoleOffset: offset,
      startedAt: now.toISOString(),
      readyAt: null,
      stoppedAt: null,
      exitCode: null,
      error: null,
    });
    ctx.deps.save(ctx.vm);
  },
  async undo(ctx) {
    const p = ctx.process;
    if (p?.running) await p.kill();
    await ctx.tail?.stop();
    ctx.tail = null;
    ctx.process = null;
    ctx.vm = { ...ctx.vm, pid: null };
    ctx.deps.save(ctx.vm);
  },
};
