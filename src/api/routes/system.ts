import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ApiMetrics } from '../metrics.js';

export interface SystemInfo {
  version: string;
  vmCount: () => number;
}

export const systemRoutes: FastifyPluginAsync<{ metrics: ApiMetrics; info: SystemInfo }> = async (app, { metrics, info }) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.get(
    '/healthz',
    { schema: { summary: 'Liveness', tags: ['system'], response: { 200: Type.Object({ status: Type.Literal('ok'), version: Type.String(), vms: Type.Integer() }) } } },
    async () => ({ status: 'ok' as const, version: info.version, vms: info.vmCount() }),
  );
  r.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['system'] } }, async (_req, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
  r.get('/openapi.json', { schema: { summary: 'This API, as OpenAPI 3', tags: ['system'] } }, async () => app.swagger());
};
