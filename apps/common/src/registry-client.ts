import { HttpStatusError, httpRequest, isTransient, NetworkError } from './http-client.js';
import { describeError, log } from './log.js';
import { retry } from './retry.js';

/** The registry key a service named `name` is published under (`db` -> `dbendpoint`). */
export function endpointKey(name: string): string {
  return `${name}endpoint`;
}

export interface ResolveOptions {
  signal?: AbortSignal;
  /** Give up after this long (default: keep waiting until the signal aborts). */
  timeoutMs?: number;
}

/** A heartbeat keeping one key alive in the registry. */
export class Registration {
  private timer: NodeJS.Timeout | undefined;
  private healthy = false;
  private inFlight: Promise<void> | undefined;

  /** The key last written; a clone's renewed hostname may change what keyOf() says. */
  private written: string | undefined;

  constructor(
    private readonly client: RegistryClient,
    private readonly keyOf: () => string,
    private readonly valueOf: () => string,
    readonly ttlSec: number,
  ) {}

  get key(): string {
    return this.written ?? this.keyOf();
  }

  start(): void {
    const beat = (): void => {
      // A slow registry must not pile up overlapping heartbeats.
      if (this.inFlight) return;
      this.inFlight = this.beat().finally(() => {
        this.inFlight = undefined;
      });
    };
    beat();
    this.timer = setInterval(beat, Math.max(100, (this.ttlSec * 1000) / 3));
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    const key = this.keyOf();
    const value = this.valueOf();
    if (this.written !== undefined && this.written !== key) {
      // Restored from a snapshot under another name: the old key is the snapshot's machine's.
      log(`registering as ${key}, no longer as ${this.written}`);
      await this.client.delete(this.written).catch(() => undefined);
      this.written = undefined;
      this.healthy = false;
    }
    try {
      await this.client.put(key, value, this.ttlSec);
      this.written = key;
      if (!this.healthy) log(`registered ${key}=${value} (ttl ${this.ttlSec}s)`);
      this.healthy = true;
    } catch (err) {
      // The registry may be restarting; the next beat re-creates the key.
      if (this.healthy) log(`registry heartbeat for ${this.key} failed: ${describeError(err)}`);
      this.healthy = false;
    }
  }

  /** Stops the heartbeat and removes the key so clients stop using this instance at once. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight;
    try {
      await this.client.delete(this.key);
    } catch (err) {
      log(`could not deregister ${this.key}: ${describeError(err)} (it expires by itself)`);
    }
  }
}

/** Client of the kvstore service: publishes and looks up service endpoints. */
export class RegistryClient {
  private readonly base: string;
  private readonly cache = new Map<string, { value: string; until: number }>();

  constructor(
    kvstore: string,
    private readonly cacheMs = 2000,
  ) {
    this.base = `http://${kvstore}`;
  }

  private url(key: string): string {
    return `${this.base}/${encodeURIComponent(key)}`;
  }

  async put(key: string, value: string, ttlSec?: number): Promise<void> {
    const query = ttlSec === undefined ? '' : `?ttl=${ttlSec}`;
    const res = await httpRequest(this.url(key) + query, { method: 'PUT', body: value, timeoutMs: 5000 });
    if (res.status !== 204 && res.status !== 200) throw new HttpStatusError(res.status, res, `PUT ${key}`);
  }

  /** The live value of `key`, or undefined when it is absent or expired. */
  async get(key: string): Promise<string | undefined> {
    const res = await httpRequest(this.url(key), { timeoutMs: 5000 });
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new HttpStatusError(res.status, res, `GET ${key}`);
    return res.body.toString('utf8');
  }

  async delete(key: string): Promise<void> {
    const res = await httpRequest(this.url(key), { method: 'DELETE', timeoutMs: 5000 });
    if (res.status !== 204 && res.status !== 404) throw new HttpStatusError(res.status, res, `DELETE ${key}`);
  }

  /** Publishes `key=value` with a TTL and keeps it alive every TTL/3 until stopped. */
  /** Keeps `key` = `value` alive; functions are asked at every heartbeat (a clone's name changes). */
  register(key: string | (() => string), value: string | (() => string), ttlSec = 10): Registration {
    const registration = new Registration(this, typeof key === 'string' ? () => key : key, typeof value === 'string' ? () => value : value, ttlSec);
    registration.start();
    return registration;
  }

  /**
   * Looks `key` up, waiting with backoff until it appears: at start-up a
   * service may ask for a peer that has not registered yet.
   */
  async resolve(key: string, options: ResolveOptions = {}): Promise<string> {
    const cached = this.cache.get(key);
    if (cached && cached.until > Date.now()) return cached.value;
    let lastLogged = 0;
    const value = await retry(
      async () => {
        const found = await this.get(key);
        if (found === undefined) throw new NetworkError(`${key} is not registered`);
        return found;
      },
      {
        signal: options.signal,
        deadlineMs: options.timeoutMs,
        shouldRetry: isTransient,
        baseMs: 50,
        capMs: 1000,
        onRetry: (err) => {
          if (Date.now() - lastLogged > 5000) {
            lastLogged = Date.now();
            log(`waiting for ${key}: ${describeError(err)}`);
          }
        },
      },
    );
    this.cache.set(key, { value, until: Date.now() + this.cacheMs });
    return value;
  }

  /** Forgets a cached endpoint, e.g. after it refused a connection. */
  invalidate(key: string): void {
    this.cache.delete(key);
  }
}
