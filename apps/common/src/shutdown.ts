import { describeError, log } from './log.js';

/**
 * Runs `hook` once on SIGTERM or SIGINT, then exits 0 (1 if the hook failed
 * or overran `hardTimeoutMs`). With EXIT_WITH_PARENT=1 (set by the native
 * runner) the end of stdin counts too, so services started by a test do not
 * outlive a crashed test process.
 */
export function onShutdown(hook: (reason: string) => Promise<void> | void, hardTimeoutMs = 10_000): void {
  let shuttingDown = false;
  const shutdown = (reason: string): void => {
    if (shuttingDown) {
      log(`${reason} again: exiting now`);
      process.exit(1);
    }
    shuttingDown = true;
    log(`${reason}: shutting down`);
    const timer = setTimeout(() => {
      log(`shutdown took over ${hardTimeoutMs} ms: exiting anyway`);
      process.exit(1);
    }, hardTimeoutMs);
    timer.unref();
    Promise.resolve()
      .then(() => hook(reason))
      .then(
        () => {
          log('stopped');
          process.exit(0);
        },
        (err: unknown) => {
          log(`shutdown failed: ${describeError(err)}`);
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  if (process.env['EXIT_WITH_PARENT'] === '1') {
    process.stdin.on('end', () => shutdown('parent gone'));
    process.stdin.on('error', () => shutdown('parent gone'));
    process.stdin.resume();
  }
}
