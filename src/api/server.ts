import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ImageService } from '../core/image-service.js';
import type { VmState } from '../core/models.js';
import type { Core } from '../core/core.js';
import type { VolumeService } from '../core/volume-service.js';
import { installErrorHandler } from './error-handler.js';
import { LiveFeed } from './live/live-feed.js';
import { VmHistory } from './live/vm-history.js';
import { ApiMetrics } from './metrics.js';
import { dashboardRoutes, isDashboardAsset } from './routes/dashboard.js';
import { eventRoutes } from './routes/events.js';
import { imageRoutes } from './routes/images.js';
import { poolRoutes } from './routes/pools.js';
import { serviceRoutes } from './routes/services.js';
import { snapshotRoutes } from './routes/snapshots.js';
import { systemRoutes } from './routes/system.js';
import { vmRoutes } from './routes/vm.js';
import { volumeRoutes } from './routes/volumes.js';

export interface ApiOptions {
  core: Core;
  images: ImageService;
  volumes: VolumeService;
  version: string;
  /** Bearer token every request but /healthz must carry; null: none (loopback only). */
  token: string | null;
  logger: FastifyBaseLogger | false;
  bodyLimit?: number;
  /** The built dashboard (dist/ui), served at /ui/. */
  uiRoot: string;
  /** The dashboard's URL once its listener is up (null: no dashboard port). */
  uiUrl: () => string | null;
}

/** The daemon's HTTP API: Fastify, one plugin per resource, schemas as the contract. */
export async function createApi(o: ApiOptions): Promise<{ app: FastifyInstance; metrics: ApiMetrics; feed: LiveFeed }> {
  const common = {
    bodyLimit: o.bodyLimit ?? 64 * 1024,
    // Reject unknown fields and wrong types rather than fixing them up silently.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
    // One line per request, written by our onResponse hook (with the route's latency).
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    // A client that declares a body and never sends it must not hold a connection for ever
    // (Fastify's default is no limit); this bounds receiving a request, not streaming a reply.
    requestTimeout: 30_000,
    // Fastify answers a malformed URL (a bad %-escape) and a path parameter longer than
    // maxParamLength by itself, in its own shape ({error: 'Bad Request', code: 'FST_ERR_...'});
    // this keeps those answers in ours (found by test/fuzz).
    frameworkErrors: (err: FastifyError, _req: FastifyRequest, reply: FastifyReply) => {
      const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
      reply.status(status).send({ error: { code: 'invalid_argument', message: err.message } });
    },
    // Node's HTTP parser refuses malformed requests (a bad header line, an unknown method,
    // a broken content-length) before Fastify sees them; Fastify's default answer is its
    // own shape. The same answer in ours (found by test/fuzz).
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: Socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      const message = status === 408 ? 'the request took too long to arrive' : status === 431 ? 'the request headers are too large' : `malformed HTTP request (${err.code ?? 'client error'})`;
      const body = JSON.stringify({ error: { code: 'invalid_argument', message } });
      // As Node's own handler: only on a connection that has not answered yet, so the
      // error never lands after (or inside) an answer to an earlier request on it.
      if (socket.writable && socket.bytesWritten === 0) {
        socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      }
      socket.destroy();
    },
  } as const;
  const app: FastifyInstance = o.logger ? Fastify({ ...common, loggerInstance: o.logger }) : Fastify({ ...common, logger: false });

  const metrics = new ApiMetrics(() => {
    const m = new Map<VmState, number>();
    for (const vm of o.core.records.list()) m.set(vm.state, (m.get(vm.state) ?? 0) + 1);
    return m;
  });
  o.core.records.on('booted', (_vm, ms) => metrics.bootSeconds.observe(ms / 1000));
  app.addHook('onResponse', async (req, reply) => {
    metrics.requestSeconds.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unknown', status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    req.log.info({ method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  if (o.token) {
    const expected = `Bearer ${o.token}`;
    app.addHook('onRequest', async (req, reply) => {
      if (req.url === '/healthz' || isDashboardAsset(req.url)) return;
      if (req.headers.authorization !== expected) {
        return reply.status(401).send({ error: { code: 'unauthorized', message: 'a valid bearer token is required' } });
      }
    });
  }

  // Clients of the original Uigniter send `content-type: application/json` with an empty
  // body on start/stop; treat that as no body rather than as broken JSON.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = (body as string).trim();
    if (text === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text) as unknown);
    } catch (e) {
      done(Object.assign(new Error(`body is not valid JSON: ${(e as Error).message}`), { statusCode: 400 }), undefined);
    }
  });
  installErrorHandler(app);
  await app.register(swagger, {
    openapi: {
      info: { title: 'uigniter', description: 'Run apps as microVMs', version: o.version },
      tags: [{ name: 'vm' }, { name: 'snapshots' }, { name: 'pools' }, { name: 'services' }, { name: 'images' }, { name: 'volumes' }, { name: 'system' }],
    },
  });
  const history = new VmHistory(o.core.records);
  const feed = new LiveFeed(o.core, o.images, o.volumes);
  app.addHook('onClose', async () => feed.close());
  await app.register(vmRoutes, { core: o.core, images: o.images });
  await app.register(eventRoutes, { feed, history, records: o.core.records });
  await app.register(dashboardRoutes, { root: o.uiRoot });
  await app.register(snapshotRoutes, { snapshots: o.core.snapshots });
  await app.register(poolRoutes, { pools: o.core.pools });
  await app.register(serviceRoutes, { services: o.core.services });
  await app.register(imageRoutes, { images: o.images });
  await app.register(volumeRoutes, { volumes: o.volumes });
  await app.register(systemRoutes, { metrics, info: { version: o.version, vmCount: () => o.core.records.list().length, uiUrl: o.uiUrl, auth: o.token !== null } });
  return { app, metrics, feed };
}
