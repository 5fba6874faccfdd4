import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { ImageService } from '../core/image-service.js';
import type { VmState } from '../core/models.js';
import type { Core } from '../core/core.js';
import type { VolumeService } from '../core/volume-service.js';
import { installErrorHandler } from './error-handler.js';
import { ApiMetrics } from './metrics.js';
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
}

/** The daemon's HTTP API: Fastify, one plugin per resource, schemas as the contract. */
export async function createApi(o: ApiOptions): Promise<{ app: FastifyInstance; metrics: ApiMetrics }> {
  const common = {
    bodyLimit: o.bodyLimit ?? 64 * 1024,
    // Reject unknown fields and wrong types rather than fixing them up silently.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
    // One line per request, written by our onResponse hook (with the route's latency).
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
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
      if (req.url === '/healthz') return;
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
  await app.register(vmRoutes, { core: o.core });
  await app.register(snapshotRoutes, { snapshots: o.core.snapshots });
  await app.register(poolRoutes, { pools: o.core.pools });
  await app.register(serviceRoutes, { services: o.core.services });
  await app.register(imageRoutes, { images: o.images });
  await app.register(volumeRoutes, { volumes: o.volumes });
  await app.register(systemRoutes, { metrics, info: { version: o.version, vmCount: () => o.core.records.list().length } });
  return { app, metrics };
}
