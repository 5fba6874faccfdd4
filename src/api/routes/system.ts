import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ApiMetrics } from '../metrics.js';

export interface SystemInfo {
  version: string;
  vmCount: () => number;
  /** The dashboard's URL (null: the daemon serves none). */
  uiUrl: () => string | null;
  /** Whether requests must carry a bearer token. */
  auth: boolean;
}

export const systemRoutes: FastifyPluginAsync<{ metrics: ApiMetrics; info: SystemInfo }> = async (app, { metrics, info }) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.get(
    '/healthz',
    {
      schema: {
        summary: 'Liveness, and where the dashboard is',
        tags: ['system'],
        response: {
          200: Type.Object({
            status: Type.Literal('ok'),
            version: Type.String(),
            vms: Type.Integer(),
            ui: Type.Union([Type.String(), Type.Null()], { description: "the dashboard's URL" }),
            auth: Type.Boolean({ description: 'whether other requests need a bearer token' }),
          }),
        },
      },
    },
    async () => ({ status: 'ok' as const, version: info.version, vms: info.vmCount(), ui: info.uiUrl(), auth: info.auth }),
  );
  r.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['system'] } }, async (_req, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
  r.get('/openapi.json', { schema: { summary: 'This API, as OpenAPI 3', tags: ['system'] } }, async () => app.swagger());
};
