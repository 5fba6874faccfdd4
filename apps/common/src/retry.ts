/** Waits `ms`, rejecting with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Exponential backoff with jitter: many workers retrying against a service
 * that just restarted must not all hit it in the same millisecond.
 */
export function backoffDelay(attempt: number, baseMs = 100, capMs = 2000): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}

export interface RetryOptions {
  /** Maximum number of attempts (default: unlimited, bounded by `deadlineMs` or `signal`). */
  attempts?: number;
  /** Give up once this much time has passed since the first attempt. */
  deadlineMs?: number;
  baseMs?: number;
  capMs?: number;
  signal?: AbortSignal;
  /** Decides whether an error is worth another attempt (default: every error). */
  shouldRetry?: (err: unknown) => boolean;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/** Runs `fn` until it succeeds, the error is not retryable, or the budget is spent. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const { attempts = Infinity, deadlineMs = Infinity, baseMs = 100, capMs = 2000, signal } = options;
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    if (signal?.aborted) throw signal.reason;
    try {
      return await fn(attempt);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      const retryable = options.shouldRetry ? options.shouldRetry(err) : true;
      const delay = backoffDelay(attempt, baseMs, capMs);
      if (!retryable || attempt + 1 >= attempts || Date.now() - started + delay > deadlineMs) throw err;
      options.onRetry?.(err, attempt, delay);
      await sleep(delay, signal);
    }
  }
}
