import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Core } from '../../core/core.js';
import type { LiveFeed } from '../live/live-feed.js';
import type { VmHistory } from '../live/vm-history.js';
import { ErrorBody, VmRef } from '../schemas.js';

/** A comment line now and then keeps proxies and idle timeouts from closing a quiet stream. */
const PING_MS = 15_000;

/** The live stream a dashboard follows, and the state history of one VM. */
export const eventRoutes: FastifyPluginAsync<{ feed: LiveFeed; history: VmHistory; records: Core['records'] }> = async (app, { feed, history, records }) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const open = new Set<() => void>();
  // Streams never end by themselves: close them before the server waits for its connections.
  app.addHook('preClose', async () => {
    for (const end of [...open]) end();
  });

  r.get(
    '/events',
    {
      schema: {
        summary: 'Server-sent events: a snapshot of the fleet first, then every change (VMs, services, pools, inventory, usage)',
        tags: ['system'],
        response: { 200: Type.String({ description: 'text/event-stream' }) },
      },
    },
    async (req, reply) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      // HEAD (which Fastify answers for every GET route) gets the headers only: a stream it
      // would never end (found by test/fuzz).
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      res.write(': uigniter live feed\n\n');
      let unsubscribe: (() => void) | null = null;
      let ended = false;
      const ping = setInterval(() => res.write(': ping\n\n'), PING_MS);
      const end = (): void => {
        if (ended) return;
        ended = true;
        clearInterval(ping);
        open.delete(end);
        unsubscribe?.();
        res.end();
      };
      open.add(end);
      req.raw.on('close', end);
      res.on('error', end);
      const unsub = await feed.subscribe((m) => {
        if (!ended) res.write(`event: ${m.event}\ndata: ${JSON.stringify(m.data)}\n\n`);
      });
      if (ended) unsub();
      else unsubscribe = unsub;
    },
  );

  r.get(
    '/vm/:id/history',
    {
      schema: {
        summary: 'Its state changes since the daemon started, oldest first',
        tags: ['vm'],
        params: VmRef,
        response: {
          200: Type.Object({
            transitions: Type.Array(Type.Object({ at: Type.String(), from: Type.Union([Type.String(), Type.Null()]), to: Type.String(), error: Type.Union([Type.String(), Type.Null()]) })),
          }),
          404: ErrorBody,
        },
      },
    },
    async (req) => ({ transitions: history.of(records.get(req.params.id).id) }),
  );
};
