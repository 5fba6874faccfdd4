import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ServiceManager } from '../../core/services/service-manager.js';
import { ErrorBody, ScalePointView, ServiceBody, ServiceEventView, ServicePatch, ServiceRef, ServiceView } from '../schemas.js';
import { serviceView } from '../views.js';

const errors = { 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 429: ErrorBody };

/** Services: replicas of an image kept by a controller, reached through a gateway, scaled by an autoscaler. */
export const serviceRoutes: FastifyPluginAsync<{ services: ServiceManager }> = async (app, { services }) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.post('/services', { schema: { summary: 'Create a service', tags: ['services'], body: ServiceBody, response: { 201: ServiceView, ...errors } } }, async (req, reply) =>
    reply.status(201).send(serviceView(await services.create(req.body))),
  );
  r.get('/services', { schema: { summary: 'Services', tags: ['services'], response: { 200: Type.Object({ services: Type.Array(ServiceView) }) } } }, async () => ({
    services: services.list().map(serviceView),
  }));
  r.get('/services/:name', { schema: { summary: 'One service', tags: ['services'], params: ServiceRef, response: { 200: ServiceView, ...errors } } }, async (req) =>
    serviceView(services.status(req.params.name)),
  );
  r.patch(
    '/services/:name',
    { schema: { summary: 'Change its replica bounds or desired count', tags: ['services'], params: ServiceRef, body: ServicePatch, response: { 200: ServiceView, ...errors } } },
    async (req) => serviceView(services.update(req.params.name, req.body)),
  );
  r.delete(
    '/services/:name',
    { schema: { summary: 'Remove a service, its replicas, pool and gateway', tags: ['services'], params: ServiceRef, response: { 204: Type.Null(), ...errors } } },
    async (req, reply) => {
      await services.remove(req.params.name);
      return reply.status(204).send(null);
    },
  );
  r.get(
    '/services/:name/events',
    {
      schema: {
        summary: 'What its controller decided and why, oldest first',
        tags: ['services'],
        params: ServiceRef,
        querystring: Type.Object({ after: Type.Optional(Type.String({ pattern: '^[0-9]{1,12}$' })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ events: Type.Array(ServiceEventView) }), ...errors },
      },
    },
    async (req) => ({ events: services.events(req.params.name, Number(req.query.after ?? 0)).map(({ id, at, kind, message, data }) => ({ id, at, kind, message, data })) }),
  );
  r.get(
    '/services/:name/metrics',
    {
      schema: {
        summary: "Its autoscaler's time series: metric, desired, ready and running replicas, decisions",
        tags: ['services'],
        params: ServiceRef,
        querystring: Type.Object({ since: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$', description: 'ms since the epoch: points after it' })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ points: Type.Array(ScalePointView) }), ...errors },
      },
    },
    async (req) => ({ points: services.metrics(req.params.name, Number(req.query.since ?? 0)) }),
  );
};
