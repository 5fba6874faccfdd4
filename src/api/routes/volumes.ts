import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { VolumeService } from '../../core/volume-service.js';
import { ErrorBody, VolumeRef, VolumeView } from '../schemas.js';

export const volumeRoutes: FastifyPluginAsync<{ volumes: VolumeService }> = async (app, { volumes }) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.get('/volumes', { schema: { summary: 'List volumes', tags: ['volumes'], response: { 200: Type.Object({ volumes: Type.Array(VolumeView) }) } } }, async () => ({
    volumes: volumes.list().map((v) => ({ name: v.name, sizeMiB: v.sizeMiB, createdAt: v.createdAt, attachedTo: v.attachedTo, usedBy: v.usedBy })),
  }));
  r.delete(
    '/volumes/:name',
    { schema: { summary: 'Delete a volume and its data (refused while a VM names it)', tags: ['volumes'], params: VolumeRef, response: { 204: Type.Null(), 404: ErrorBody, 409: ErrorBody } } },
    async (req, reply) => {
      await volumes.remove(req.params.name);
      return reply.status(204).send(null);
    },
  );
};
