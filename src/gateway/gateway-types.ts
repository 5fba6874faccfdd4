/**
 * The contract between the HTTP gateway of services and the service layer. Free of imports
 * on purpose: these move to core/ports.ts when the gateway is wired in.
 */

/** A ready replica of a service: a VM and the address its port answers on. */
export interface Replica {
  vmId: string;
  ip: string;
  port: number;
}

/** What the gateway asks of the service layer. */
export interface ReplicaSource {
  /** The service's ready replicas now (may be empty). */
  ready(service: string): Replica[];
  /**
   * Asks for one replica to be started (scale from zero, pool first). Resolves once the call
   * was accepted; readiness is signalled by replicasChanged(). May reject (unknown service,
   * limit reached): held requests then get 503 with that message.
   */
  wake(service: string): Promise<void>;
}

/** Counters for the autoscaler: `requests`, `failures` and `retries` only grow (the caller derives rates). */
export interface GatewayStats {
  service: string;
  /** Requests being proxied now plus the queued ones. */
  inflight: number;
  /** Requests held while the service has no ready replica. */
  queued: number;
  requests: number;
  failures: number;
  retries: number;
}

export interface GatewayOpenOptions {
  hostAddr: string;
  /** 0 or undefined: a free port (kept on a re-open that asks for none). */
  hostPort?: number;
  /** Requests held at most while no replica is ready; more answer 503 at once. */
  queueLimit: number;
  /** How long a request is held before it answers 503. */
  holdTimeoutMs: number;
}

export interface ServiceGateway {
  /** Opens the service's entry point (idempotent; re-open with new settings replaces them). */
  open(service: string, settings: GatewayOpenOptions): Promise<{ url: string; hostPort: number }>;
  close(service: string): Promise<void>;
  closeAll(): Promise<void>;
  stats(service: string): GatewayStats | null;
  /** The set of ready replicas may have changed: held requests are released to new replicas. */
  replicasChanged(service: string): void;
}
