import { setTimeout as sleep } from 'node:timers/promises';
import { UigniterError } from '../errors.js';
import type { Step } from '../plan.js';
import { transition } from '../vm-state.js';
import type { BootContext } from './boot-context.js';

/** Waits for the guest init to report the app ready; fails on exit, VMM death, timeout or cancel. */
export const waitReady: Step<BootContext> = {
  name: 'wait-ready',
  async run(ctx) {
    const tail = ctx.tail!;
    const proc = ctx.process!;
    const abort = new AbortController();
    const onCancel = (): void => abort.abort();
    ctx.cancel.addEventListener('abort', onCancel, { once: true });
    try {
      const outcome = await Promise.race([
        tail.waitFor((e) => e.event === 'ready' || e.event === 'exit', ctx.deps.readyTimeoutMs, abort.signal).then(
          (e) => e,
          (e: unknown) => ({ event: 'error' as const, error: e }),
        ),
        proc.exited.then(async () => {
          // Let the tail read the last lines: the exit event tells why.
          await tail.pump();
          await sleep(20);
          return { event: 'vmm-exit' as const };
        }),
      ]);
      if (outcome.event === 'ready') {
        ctx.marks.ready = performance.now();
        const now = ctx.deps.clock.now();
        const bootMs = ctx.launchedAt === null ? null : Math.round(performance.now() - ctx.launchedAt);
        ctx.vm = transition(ctx.vm, 'running', now, { readyAt: now.toISOString(), bootMs });
        ctx.deps.save(ctx.vm);
        return;
      }
      if (outcome.event === 'exit') {
        throw new UigniterError('boot_failed', `the app exited with status ${outcome.code} before it was ready${outcome.error ? ` (${outcome.error})` : ''}; see the VM's logs`);
      }
      if (outcome.event === 'vmm-exit') {
        throw new UigniterError('boot_failed', 'the VM ended before its app was ready; see the VM\'s logs');
      }
      if (ctx.cancel.aborted) throw new UigniterError('conflict', 'the VM was stopped while it was booting');
      throw new UigniterError('timeout', `the app was not ready within ${ctx.deps.readyTimeoutMs} ms`);
    } finally {
      ctx.cancel.removeEventListener('abort', onCancel);
      abort.abort();
    }
  },
};
