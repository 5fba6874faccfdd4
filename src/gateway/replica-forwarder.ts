import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher } from 'undici';
import { downstreamHeaders, upstreamHeaders } from './forward-headers.js';
import { replyError } from './gateway-replies.js';
import type { Replica } from './gateway-types.js';
import type { ReplicaBalancer } from './replica-balancer.js';
import type { ReplicaDispatchers } from './replica-dispatchers.js';
import { hasBody, isConnectionFailure, isReplayable } from './retry-policy.js';

export interface ForwardContext {
  service: string;
  /** The service's ready replicas, read again before each attempt. */
  replicas: () => Replica[];
  balancer: ReplicaBalancer;
  dispatchers: ReplicaDispatchers;
  /** Attempts after the first, each on a replica not tried yet. */
  maxRetries: number;
  onRetry: () => void;
}

/** answered: the replica's response reached the client; failed: the gateway answered 502 or cut the response; client_gone: nobody to answer. */
export type ForwardOutcome = 'answered' | 'failed' | 'client_gone';

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  return code !== undefined && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
}

/**
 * Sends one client request to a ready replica and streams the answer back. A replayable
 * request (retry-policy.ts) whose replica failed at the connection level goes to another
 * one; anything else answers 502. Once the response has started it is never retried: a
 * replica that fails mid-body leaves the client a cut response (the connection is reset).
 */
export async function forwardRequest(ctx: ForwardContext, req: IncomingMessage, res: ServerResponse): Promise<ForwardOutcome> {
  const replayable = isReplayable(req);
  const body = hasBody(req) ? req : null;
  const headers = upstreamHeaders(req);
  const tried = new Set<string>();
  // Who failed first decides the outcome: the client leaving makes the gateway tear down
  // the replica's stream, and the replica failing makes it tear down the client's.
  let clientLeft = false;
  const abort = new AbortController();
  const onClientClose = (): void => {
    if (res.writableFinished) return;
    clientLeft = true;
    abort.abort();
  };
  res.once('close', onClientClose);
  let lastFailure = '';
  try {
    for (let attempt = 0; attempt <= ctx.maxRetries; attempt++) {
      const replica = ctx.balancer.pick(ctx.replicas(), tried);
      if (replica === undefined) break;
      if (attempt > 0) ctx.onRetry();
      tried.add(replica.vmId);
      ctx.balancer.acquire(replica.vmId);
      try {
        let upstream: Dispatcher.ResponseData;
        try {
          upstream = await ctx.dispatchers.get(replica).request({
            path: req.url ?? '/',
            method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
            headers,
            body,
            signal: abort.signal,
          });
        } catch (err) {
          if (clientLeft) return 'client_gone';
          lastFailure = `replica ${replica.vmId} of service ${ctx.service} failed: ${describe(err)}`;
          if (!isConnectionFailure(err)) break;
          ctx.balancer.eject(replica.vmId);
          if (!replayable) break;
          continue;
        }
        let replicaFailed = false;
        upstream.body.once('error', () => {
          if (!clientLeft) replicaFailed = true;
        });
        try {
          res.writeHead(upstream.statusCode, downstreamHeaders(upstream.headers, replica.vmId));
        } catch (err) {
          // Node refuses some status codes and header values that undici parses.
          upstream.body.destroy();
          lastFailure = `replica ${replica.vmId} of service ${ctx.service} sent a response that cannot be passed on: ${describe(err)}`;
          break;
        }
        try {
          await pipeline(upstream.body, res);
          return 'answered';
        } catch {
          return replicaFailed || !clientLeft ? 'failed' : 'client_gone';
        }
      } finally {
        ctx.balancer.release(replica.vmId);
      }
    }
    if (clientLeft) return 'client_gone';
    // The client may still be sending a body nobody reads (undici destroyed it): a connection
    // reused after that answer would be reset under the client's next request.
    replyError(res, 'bad_gateway', lastFailure || `no ready replica of service ${ctx.service} is left to try`, { closeConnection: body !== null });
    return 'failed';
  } finally {
    res.off('close', onClientClose);
  }
}
