import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ImageService } from '../../core/image-service.js';
import { BuildImageBody, ErrorBody, ImageRef, ImageView } from '../schemas.js';
import { imageView } from '../views.js';

export const imageRoutes: FastifyPluginAsync<{ images: ImageService }> = async (app, { images }) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const errors = { 400: ErrorBody, 404: ErrorBody, 409: ErrorBody };

  r.get('/images', { schema: { summary: 'List images', tags: ['images'], response: { 200: Type.Object({ images: Type.Array(ImageView) }) } } }, async () => ({
    images: (await images.list()).map(imageView),
  }));

  r.get('/images/:name', { schema: { summary: 'One image', tags: ['images'], params: ImageRef, response: { 200: ImageView, ...errors } } }, async (req) =>
    imageView(await images.get(req.params.name)),
  );

  r.post(
    '/images',
    {
      schema: {
        summary: 'Build an image from an app directory on the daemon host (200 when it was unchanged)',
        tags: ['images'],
        body: BuildImageBody,
        response: { 200: ImageView, 201: ImageView, ...errors },
      },
    },
    async (req, reply) => {
      const { manifest, unchanged } = await images.build(req.body.path, req.body.name);
      return reply.status(unchanged ? 200 : 201).send(imageView(manifest));
    },
  );

  r.delete(
    '/images/:name',
    { schema: { summary: 'Remove an image (refused while a VM uses it)', tags: ['images'], params: ImageRef, response: { 204: Type.Null(), ...errors } } },
    async (req, reply) => {
      await images.remove(req.params.name);
      return reply.status(204).send(null);
    },
  );
};
