import { ConsoleTail } from '../../guest/console-tail.js';
import { CONSOLE_ROTATE_BYTES } from '../guest-boot.js';
import type { Step } from '../plan.js';
import type { VmmProcess } from '../ports.js';
import { transition } from '../vm-state.js';
import type { BootContext } from './boot-context.js';

/** Follows the console from this boot's first byte, runs `start`, and records the VM as booting. */
export async function startVmm(ctx: BootContext, start: () => Promise<VmmProcess>): Promise<void> {
  const launch = ctx.launch!;
  const offset = await ConsoleTail.sizeOf(launch.consoleLog);
  ctx.tail = new ConsoleTail(launch.consoleLog, { offset, pollMs: 50, rotateAtBytes: CONSOLE_ROTATE_BYTES }).start();
  ctx.launchedAt = ctx.marks.vmmStart = performance.now();
  ctx.process = await start();
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
    origin: ctx.restore?.origin ?? 'cold',
    restoredFrom: ctx.restore?.snapshot ?? null,
  });
  ctx.deps.save(ctx.vm);
}

/** Ends the VMM (if it still runs) and stops following its console. */
export async function endVmm(ctx: BootContext): Promise<void> {
  const p = ctx.process;
  if (p?.running) await p.kill();
  await ctx.tail?.stop();
  ctx.tail = null;
  ctx.process = null;
  ctx.vm = { ...ctx.vm, pid: null };
  ctx.deps.save(ctx.vm);
}

/** Starts the VMM process for a cold boot. */
export const launchVmm: Step<BootContext> = {
  name: 'launch-vmm',
  run: (ctx) => startVmm(ctx, () => ctx.vmm.launch(ctx.launch!)),
  undo: endVmm,
};
