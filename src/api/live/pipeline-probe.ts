import type { Core } from '../../core/core.js';
import type { PipelineStats } from './pipeline-stats.js';

/** The demo's db VM (src/demo/demo-app.ts names it) and the port its app listens on. */
const DB_VM = 'db';
const DB_PORT = 9001;

function isStats(v: unknown): v is PipelineStats {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return ['ready', 'leased', 'done', 'failed', 'total'].every((k) => typeof o[k] === 'number') && typeof o.byWorker === 'object' && o.byWorker !== null;
}

/**
 * Reads the image demo's backlog from its db VM when that VM runs (the daemon reaches guest
 * addresses through its veth route): what the dashboard's demo view charts. Null when the demo
 * does not run or its db does not answer in time.
 */
export async function probePipeline(records: Core['records'], timeoutMs = 1000): Promise<{ vm: string; stats: PipelineStats } | null> {
  const db = records.find(DB_VM);
  if (!db || db.state !== 'running' || !db.ip || db.spec.image.split(':')[0] !== DB_VM) return null;
  try {
    const res = await fetch(`http://${db.ip}:${DB_PORT}/stats`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return null;
    const body: unknown = await res.json();
    return isStats(body) ? { vm: db.name, stats: body } : null;
  } catch {
    return null;
  }
}
