import { existsSync } from 'node:fs';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';

/** Paths a browser fetches before it has a token: the page itself, which holds no data. */
export function isDashboardAsset(url: string): boolean {
  return url === '/' || url === '/ui' || url.startsWith('/ui/');
}

/**
 * The dashboard: static files built from ui/ (node ui/build.mjs) into dist/ui, served at /ui/.
 * Everything it shows comes from the API on the same origin.
 */
export const dashboardRoutes: FastifyPluginAsync<{ root: string }> = async (app, { root }) => {
  if (!existsSync(root)) {
    const notBuilt = async (_req: unknown, reply: FastifyReply): Promise<FastifyReply> =>
      reply.status(404).send({ error: { code: 'not_found', message: `the dashboard is not built (${root} is missing): run npm run build` } });
    app.get('/', { schema: { hide: true } }, notBuilt);
    app.get('/ui/*', { schema: { hide: true } }, notBuilt);
    return;
  }
  await app.register(fastifyStatic, { root, prefix: '/ui/', redirect: true, index: ['index.html'], cacheControl: true, maxAge: 0 });
  // The page at / as well (its assets are under /ui/; it routes by the URL's hash), so the
  // root answers 200 rather than a redirect that every client must follow.
  app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.sendFile('index.html'));
};
