import { setTimeout as sleep } from 'node:timers/promises';
import type { TaskStats } from '@uigniter-demo/common/task-record';

export interface TaskInfo {
  id: number;
  state: 'ready' | 'leased' | 'done' | 'failed';
  finishedBy: string | null;
  attempts: number;
}

/** The db's counts, as master relays them. */
export type PipelineStats = TaskStats;

/** The demo's public API (master), as a user of it sees it. */
export class MasterClient {
  constructor(readonly base: string) {}

  async upload(png: Buffer, filename = 'image.png'): Promise<number> {
    const form = new FormData();
    form.append('image', new Blob([png], { type: 'image/png' }), filename);
    const res = await fetch(`${this.base}/task`, { method: 'POST', body: form, signal: AbortSignal.timeout(30_000) });
    const body = (await res.json()) as { id?: number; error?: { message: string } };
    if (res.status !== 201 || typeof body.id !== 'number') throw new Error(`upload answered ${res.status}: ${body.error?.message ?? JSON.stringify(body)}`);
    return body.id;
  }

  async task(id: number): Promise<TaskInfo> {
    const res = await fetch(`${this.base}/task/${id}`, { signal: AbortSignal.timeout(10_000) });
    if (res.status !== 200) throw new Error(`GET /task/${id} answered ${res.status}`);
    return (await res.json()) as TaskInfo;
  }

  async result(id: number): Promise<Buffer> {
    const res = await fetch(`${this.base}/task/${id}/result`, { signal: AbortSignal.timeout(10_000) });
    if (res.status !== 200) throw new Error(`GET /task/${id}/result answered ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  }

  async stats(): Promise<PipelineStats> {
    const res = await fetch(`${this.base}/stats`, { signal: AbortSignal.timeout(10_000) });
    return (await res.json()) as PipelineStats;
  }

  /** Waits until every task is done (or failed); answers the tasks. */
  async waitAll(ids: number[], timeoutMs: number, onProgress?: (done: number) => void): Promise<TaskInfo[]> {
    const deadline = Date.now() + timeoutMs;
    const finished = new Map<number, TaskInfo>();
    let reported = -1;
    while (finished.size < ids.length) {
      if (Date.now() > deadline) throw new Error(`only ${finished.size} of ${ids.length} tasks finished within ${timeoutMs} ms`);
      for (const id of ids) {
        if (finished.has(id)) continue;
        const t = await this.task(id).catch(() => null);
        if (t && (t.state === 'done' || t.state === 'failed')) finished.set(id, t);
      }
      if (finished.size !== reported) {
        reported = finished.size;
        onProgress?.(reported);
      }
      if (finished.size < ids.length) await sleep(100);
    }
    return ids.map((id) => finished.get(id)!);
  }
}
