import { HttpStatusError, jsonBody, type HttpResponse } from './http-client.js';
import type { ServiceEndpoint } from './service-endpoint.js';
import type { TaskRecord, TaskStats } from './task-record.js';

/**
 * One-shot calls to the db service. Every method makes a single request and
 * throws on failure: the caller decides what is worth a retry.
 */
export class TaskClient {
  constructor(private readonly db: ServiceEndpoint) {}

  private async call(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<HttpResponse> {
    return this.db.request(path, {
      method,
      signal,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  private static expect(res: HttpResponse, ok: number[], context: string): HttpResponse {
    if (!ok.includes(res.status)) throw new HttpStatusError(res.status, res, context);
    return res;
  }

  async create(input: string, signal?: AbortSignal): Promise<TaskRecord> {
    const res = await this.call('POST', '/task', { input }, signal);
    return jsonBody<TaskRecord>(TaskClient.expect(res, [200, 201], 'create task'));
  }

  async get(id: number, signal?: AbortSignal): Promise<TaskRecord | undefined> {
    const res = await this.call('GET', `/task/${id}`, undefined, signal);
    if (res.status === 404) return undefined;
    return jsonBody<TaskRecord>(TaskClient.expect(res, [200], `get task ${id}`));
  }

  /** Leases the oldest available task, or returns undefined when there is none. */
  async leaseNext(worker: string, signal?: AbortSignal): Promise<TaskRecord | undefined> {
    const res = await this.call('GET', `/task/next?worker=${encodeURIComponent(worker)}`, undefined, signal);
    if (res.status === 204) return undefined;
    return jsonBody<TaskRecord>(TaskClient.expect(res, [200], 'lease next task'));
  }

  async heartbeat(id: number, leaseToken: string, signal?: AbortSignal): Promise<TaskRecord> {
    const res = await this.call('POST', `/task/${id}/heartbeat`, { leaseToken }, signal);
    return jsonBody<TaskRecord>(TaskClient.expect(res, [200], `heartbeat task ${id}`));
  }

  async finish(id: number, leaseToken: string, result: string, signal?: AbortSignal): Promise<TaskRecord> {
    const res = await this.call('POST', `/task/${id}/finish`, { leaseToken, result }, signal);
    return jsonBody<TaskRecord>(TaskClient.expect(res, [200], `finish task ${id}`));
  }

  async release(id: number, leaseToken: string, signal?: AbortSignal): Promise<TaskRecord> {
    const res = await this.call('POST', `/task/${id}/release`, { leaseToken }, signal);
    return jsonBody<TaskRecord>(TaskClient.expect(res, [200], `release task ${id}`));
  }

  async fail(id: number, leaseToken: string, error: string, signal?: AbortSignal): Promise<TaskRecord> {
    const res = await this.call('POST', `/task/${id}/fail`, { leaseToken, error }, signal);
    return jsonBody<TaskRecord>(TaskClient.expect(res, [200], `fail task ${id}`));
  }

  async stats(signal?: AbortSignal): Promise<TaskStats> {
    const res = await this.call('GET', '/stats', undefined, signal);
    return jsonBody<TaskStats>(TaskClient.expect(res, [200], 'task stats'));
  }
}
