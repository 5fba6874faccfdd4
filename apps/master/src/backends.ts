import { HttpError } from '@uigniter-demo/common/http-error';
import { isTransient } from '@uigniter-demo/common/http-client';
import { describeError } from '@uigniter-demo/common/log';
import { retry } from '@uigniter-demo/common/retry';

/**
 * Runs a call to db or storage with a short retry budget: a user waiting on
 * an upload should get a 503 within seconds, not hang while a peer reboots.
 */
export async function callBackend<T>(what: string, fn: () => Promise<T>, deadlineMs: number): Promise<T> {
  try {
    return await retry(fn, { deadlineMs, capMs: 1000, shouldRetry: isTransient });
  } catch (err) {
    if (err instanceof HttpError) throw err;
    if (isTransient(err)) throw new HttpError(503, 'unavailable', `${what}: ${describeError(err)}`);
    throw new HttpError(502, 'backend_error', `${what}: ${describeError(err)}`);
  }
}
