import { setTimeout as sleep } from 'node:timers/promises';
import { invalid } from '../errors.js';
import type { ImageManifest, PoolWarm, ReadyCheck } from '../models.js';
import { probeOnce } from '../snapshots/probe-once.js';

/** What a client may say about warming a pool's spares (POST /pools `warm`, a service's `pool.warm`). */
export interface WarmRequest {
  path?: string;
  requests?: number;
}

export const DEFAULT_WARM_REQUESTS = 10;
export const MAX_WARM_REQUESTS = 100;

/**
 * Resolves how a pool warms each spare before pausing it. Under TCG a restored VM's first
 * request pays for translating every guest instruction on its path (the code cache is per
 * QEMU process, not in the snapshot): a few requests before the pause move that cost off
 * the client's path. By default they repeat the app's readiness check (an HTTP GET of its
 * path, or a TCP connect), which is safe to repeat by definition; `path` names another
 * path to prime, as Lambda SnapStart's priming does: its requests reach the app in every
 * spare, so it must be safe to repeat. The port is the service's port, else the
 * readiness check's, else the image's first; with none, nothing is sent.
 */
export function resolveWarm(req: WarmRequest | undefined, image: ImageManifest, field: string, servicePort: number | null = null, readinessPath: string | null = null): PoolWarm {
  const requests = req?.requests ?? DEFAULT_WARM_REQUESTS;
  if (!Number.isInteger(requests) || requests < 0 || requests > MAX_WARM_REQUESTS) throw invalid(`${field}.requests`, `${field}.requests must be an integer from 0 to ${MAX_WARM_REQUESTS}`);
  const path = req?.path ?? null;
  if (path !== null && !/^\/[\x21-\x7e]*$/.test(path)) throw invalid(`${field}.path`, `${field}.path must start with / and hold no spaces`);
  const ready = image.ready;
  const port = servicePort ?? (ready.kind !== 'none' ? ready.port : (image.ports[0] ?? null));
  if (path !== null && port === null) throw invalid(`${field}.path`, `${field}.path needs a port: the image declares none`);
  const imagePath = ready.kind === 'http' && ready.port === port ? ready.path : null;
  return { port, path: path ?? readinessPath ?? imagePath, requests: port === null ? 0 : requests };
}

/** How long a restored spare's app gets to pass its readiness check again. */
export const READY_AGAIN_MS = 10_000;

/**
 * Waits until an HTTP readiness check answers 2xx or 3xx (as the guest init requires) again.
 * A restored spare was ready in its snapshot, but its renewal cut the snapshot's
 * connections: an app that needs one to work (a broker, a database) may still be
 * reconnecting, and a spare paused then would do that reconnecting, translated from
 * scratch under TCG, after its hand-out, on its first client's time.
 */
export async function readyAgain(ip: string, ready: ReadyCheck, timeoutMs = READY_AGAIN_MS, everyMs = 50): Promise<void> {
  if (ready.kind !== 'http') return;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await probeOnce(ip, ready, Math.max(100, deadline - Date.now())).catch(() => null);
    if (status !== null && status >= 200 && status < 400) return;
    if (Date.now() >= deadline) throw new Error(`its readiness check (GET ${ready.path}) did not pass again within ${timeoutMs} ms (last: ${status ?? 'no answer'})`);
    await sleep(everyMs);
  }
}

/** Sends a spare its warm-up requests, one after another; any answer counts. */
export async function warmUp(ip: string, warm: PoolWarm): Promise<void> {
  if (warm.port === null) return;
  const check: ReadyCheck = warm.path !== null ? { kind: 'http', port: warm.port, path: warm.path } : { kind: 'tcp', port: warm.port };
  for (let i = 0; i < warm.requests; i++) await probeOnce(ip, check);
}
