import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { GatewayError } from './gateway-error.js';
import { replyError } from './gateway-replies.js';
import type { GatewayOpenOptions, GatewayStats, ReplicaSource } from './gateway-types.js';
import { HoldQueue } from './hold-queue.js';
import { ReplicaBalancer } from './replica-balancer.js';
import { ReplicaDispatchers } from './replica-dispatchers.js';
import { forwardRequest, type ForwardContext } from './replica-forwarder.js';
import { WakeEpisodes } from './wake-episodes.js';

export interface EntrySettings {
  maxRetries: number;
  ejectMs: number;
  connectionsPerReplica: number;
  connectTimeoutMs: number;
  closeGraceMs: number;
  now: () => number;
}

interface HeldRequest {
  req: IncomingMessage;
  res: ServerResponse;
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void =>
      reject(
        e.code === 'EADDRINUSE'
          ? new GatewayError('conflict', `host port ${host}:${port} is already in use`)
          : new GatewayError('invalid_argument', `cannot listen on ${host}:${port}: ${e.message}`),
      );
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as { port: number }).port);
    });
  });
}

/**
 * One service's entry point: an HTTP listener on the host whose requests go to the
 * service's ready replicas, or wait in a bounded queue (and wake the service) while it has none.
 */
export class ServiceEntry {
  private server: Server | undefined;
  private address = { host: '', port: 0 };
  /** Listeners replaced by a re-open on another address: their connections end with close(). */
  private readonly retired: Server[] = [];
  private limits = { queueLimit: 0, holdTimeoutMs: 0 };
  private readonly held = new HoldQueue<HeldRequest>();
  private readonly wakes: WakeEpisodes;
  private readonly balancer: ReplicaBalancer;
  private readonly dispatchers: ReplicaDispatchers;
  private readonly forwarding: ForwardContext;
  /** Responses not yet finished, proxied or answered by the gateway: close() waits for them. */
  private readonly unfinished = new Set<ServerResponse>();
  private proxying = 0;
  private readonly counters = { requests: 0, failures: 0, retries: 0 };
  private closing = false;

  constructor(
    private readonly service: string,
    private readonly source: ReplicaSource,
    private readonly settings: EntrySettings,
  ) {
    this.balancer = new ReplicaBalancer(settings.ejectMs, settings.now);
    this.dispatchers = new ReplicaDispatchers({ connections: settings.connectionsPerReplica, connectTimeoutMs: settings.connectTimeoutMs });
    this.wakes = new WakeEpisodes(() => source.wake(service), { accepted: () => this.replicasChanged(), rejected: (err) => this.refuseHeld(err) }, settings.now);
    this.forwarding = {
      service,
      replicas: () => source.ready(service),
      balancer: this.balancer,
      dispatchers: this.dispatchers,
      maxRetries: settings.maxRetries,
      onRetry: () => this.counters.retries++,
    };
  }

  /** Listens (or keeps listening) where `wanted` says, with its queue limits. */
  async listen(wanted: GatewayOpenOptions): Promise<{ url: string; hostPort: number }> {
    if (!Number.isInteger(wanted.queueLimit) || wanted.queueLimit < 0) throw new GatewayError('invalid_argument', `queueLimit must be an integer >= 0, not ${wanted.queueLimit}`);
    if (!(wanted.holdTimeoutMs > 0)) throw new GatewayError('invalid_argument', `holdTimeoutMs must be > 0, not ${wanted.holdTimeoutMs}`);
    const port = wanted.hostPort || 0;
    const same = this.server !== undefined && this.address.host === wanted.hostAddr && (port === 0 || port === this.address.port);
    if (!same) {
      const server = createServer((req, res) => this.handle(req, res));
      server.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
        socket.end('HTTP/1.1 501 Not Implemented\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      });
      const bound = await listen(server, wanted.hostAddr, port);
      if (this.server !== undefined) this.retire(this.server);
      this.server = server;
      this.address = { host: wanted.hostAddr, port: bound };
    }
    // Requests held already keep the deadline they were given.
    this.limits = { queueLimit: wanted.queueLimit, holdTimeoutMs: wanted.holdTimeoutMs };
    const host = this.address.host.includes(':') ? `[${this.address.host}]` : this.address.host;
    return { url: `http://${host}:${this.address.port}`, hostPort: this.address.port };
  }

  stats(): GatewayStats {
    return { service: this.service, inflight: this.proxying + this.held.size, queued: this.held.size, ...this.counters };
  }

  /** Releases held requests if a replica is ready, and lets go of replicas that are not. */
  /** Requests being proxied to one replica now. */
  inflightTo(vmId: string): number {
    return this.balancer.inflightTo(vmId);
  }

  replicasChanged(): void {
    if (this.closing) return;
    const ready = this.source.ready(this.service);
    this.dispatchers.retain(ready, this.source.draining(this.service));
    this.balancer.retain(new Set(ready.map((r) => r.vmId)));
    if (ready.length === 0) return;
    this.wakes.end();
    for (const { req, res } of this.held.drain()) void this.proxy(req, res);
  }

  /**
   * Stops listening, answers held requests 503, lets proxied ones finish for up to
   * closeGraceMs, then ends every connection, to clients and to replicas.
   */
  async close(): Promise<void> {
    this.closing = true;
    const servers = [...this.retired, ...(this.server ? [this.server] : [])];
    const stopped = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    for (const { res } of this.held.drain()) this.unavailable(res, `the entry point of service ${this.service} is closed`, true);
    await this.settled(this.settings.closeGraceMs);
    await this.dispatchers.destroyAll();
    for (const s of servers) s.closeAllConnections();
    await stopped;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.counters.requests++;
    this.unfinished.add(res);
    res.once('close', () => this.unfinished.delete(res));
    if (this.closing) return this.unavailable(res, `the entry point of service ${this.service} is closed`, true);
    let ready: number;
    try {
      ready = this.source.ready(this.service).length;
    } catch (err) {
      // A throw here would leave the request unanswered (or take the daemon down).
      return this.unavailable(res, err instanceof Error ? err.message : String(err));
    }
    if (ready > 0) return void this.proxy(req, res);
    this.hold(req, res);
  }

  private hold(req: IncomingMessage, res: ServerResponse): void {
    const { queueLimit, holdTimeoutMs } = this.limits;
    const entry: HeldRequest = { req, res };
    const held = this.held.hold(entry, queueLimit, holdTimeoutMs, () => this.unavailable(res, `no replica of service ${this.service} became ready within ${holdTimeoutMs} ms`));
    if (held) res.once('close', () => this.held.remove(entry));
    else this.unavailable(res, `the queue of service ${this.service} is full (${queueLimit} requests)`);
    // After holding: a source that readies a replica within wake() itself finds the request queued.
    // A full queue still makes sure a wake is under way.
    this.wakes.ensure(holdTimeoutMs);
  }

  private async proxy(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.proxying++;
    try {
      const outcome = await forwardRequest(this.forwarding, req, res);
      if (outcome === 'failed') this.counters.failures++;
    } catch {
      // forwardRequest answers its own failures; anything else is a bug not to take the daemon down with.
      this.counters.failures++;
      res.destroy();
    } finally {
      this.proxying--;
    }
  }

  private refuseHeld(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    for (const { res } of this.held.drain()) this.unavailable(res, message);
  }

  private unavailable(res: ServerResponse, message: string, closeConnection = false): void {
    this.counters.failures++;
    replyError(res, 'unavailable', message, { closeConnection });
  }

  private retire(server: Server): void {
    this.retired.push(server);
    server.close();
  }

  /** Resolves once every open response has ended, or after graceMs. */
  private async settled(graceMs: number): Promise<void> {
    if (this.unfinished.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    const ended = Promise.all([...this.unfinished].map((res) => new Promise<void>((resolve) => (res.closed ? resolve() : res.once('close', () => resolve())))));
    await Promise.race([ended, deadline]);
    clearTimeout(timer);
  }
}
