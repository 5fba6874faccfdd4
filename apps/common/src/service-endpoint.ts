import { httpRequest, NetworkError, type HttpResponse, type RequestOptions } from './http-client.js';
import { endpointKey, type RegistryClient } from './registry-client.js';

/** Addresses a peer service by its registry name rather than a fixed address. */
export class ServiceEndpoint {
  private readonly key: string;

  constructor(
    private readonly registry: RegistryClient,
    readonly name: string,
    /** How long to wait for the peer to appear in the registry per request. */
    private readonly resolveTimeoutMs = 10_000,
  ) {
    this.key = endpointKey(name);
  }

  async request(path: string, options: RequestOptions = {}): Promise<HttpResponse> {
    const address = await this.registry.resolve(this.key, {
      signal: options.signal,
      timeoutMs: this.resolveTimeoutMs,
    });
    try {
      return await httpRequest(`http://${address}${path}`, options);
    } catch (err) {
      // The peer may have moved (restarted VM, new address): look it up again next time.
      if (err instanceof NetworkError) this.registry.invalidate(this.key);
      throw err;
    }
  }
}
