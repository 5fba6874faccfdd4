import { CHECKSUM_HEADER, sha256Hex } from './checksum.js';
import { HttpStatusError, NetworkError } from './http-client.js';
import type { ServiceEndpoint } from './service-endpoint.js';

/**
 * One-shot calls to the storage service. Uploads carry their checksum so
 * storage refuses bytes damaged on the way; downloads are checked against
 * the checksum storage reports for the same reason.
 */
export class StorageClient {
  constructor(private readonly storage: ServiceEndpoint) {}

  async put(id: string, data: Buffer, signal?: AbortSignal): Promise<string> {
    const checksum = sha256Hex(data);
    const res = await this.storage.request(`/object/${encodeURIComponent(id)}`, {
      method: 'PUT',
      body: data,
      signal,
      headers: { 'content-type': 'application/octet-stream', [CHECKSUM_HEADER]: checksum },
      timeoutMs: 30_000,
    });
    if (res.status !== 201 && res.status !== 200) throw new HttpStatusError(res.status, res, `store ${id}`);
    return checksum;
  }

  /** The object's bytes, or undefined if storage has no such object. */
  async get(id: string, signal?: AbortSignal): Promise<Buffer | undefined> {
    const res = await this.storage.request(`/object/${encodeURIComponent(id)}`, { signal, timeoutMs: 30_000 });
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new HttpStatusError(res.status, res, `fetch ${id}`);
    const expected = res.headers[CHECKSUM_HEADER];
    if (typeof expected !== 'string' || sha256Hex(res.body) !== expected) {
      // Damaged in transit rather than on disk (storage verified it): another try may succeed.
      throw new NetworkError(`fetch ${id}: body does not match ${CHECKSUM_HEADER}`);
    }
    return res.body;
  }

  async delete(id: string, signal?: AbortSignal): Promise<void> {
    const res = await this.storage.request(`/object/${encodeURIComponent(id)}`, { method: 'DELETE', signal });
    if (res.status !== 204 && res.status !== 404) throw new HttpStatusError(res.status, res, `delete ${id}`);
  }
}
