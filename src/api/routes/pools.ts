import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { PoolService } from '../../core/pools/pool-service.js';
import { ErrorBody, PoolBody, PoolRef, PoolView } from '../schemas.js';
import { poolView } from '../views.js';

const errors = { 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 429: ErrorBody };

/** Warm pools: spares of a VM spec kept booted and paused; POST /vm/run of that spec takes one. */
export const poolRoutes: FastifyPluginAsync<{ pools: PoolService }> = async (app, { pools }) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.post(
    '/pools',
    { schema: { summary: 'Keep `size` VMs of a spec booted and paused, for POST /vm/run of that spec', tags: ['pools'], body: PoolBody, response: { 201: PoolView, ...errors } } },
    async (req, reply) => {
      const p = await pools.create(req.body);
      return reply.status(201).send(poolView(pools.get(p.id)));
    },
  );
  r.get('/pools', { schema: { summary: 'Warm pools', tags: ['pools'], response: { 200: Type.Object({ pools: Type.Array(PoolView) }) } } }, async () => ({
    pools: pools.list().map(poolView),
  }));
  r.get('/pools/:id', { schema: { summary: 'One warm pool', tags: ['pools'], params: PoolRef, response: { 200: PoolView, ...errors } } }, async (req) =>
    poolView(pools.get(req.params.id)),
  );
  r.delete(
    '/pools/:id',
    { schema: { summary: 'Remove a pool and its spares', tags: ['pools'], params: PoolRef, response: { 204: Type.Null(), ...errors } } },
    async (req, reply) => {
      await pools.remove(req.params.id);
      return reply.status(204).send(null);
    },
  );
};
