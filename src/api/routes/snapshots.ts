import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { SnapshotKind } from '../../core/models.js';
import type { SnapshotService } from '../../core/snapshots/snapshot-service.js';
import { ErrorBody, SnapshotRef, SnapshotView } from '../schemas.js';
import { snapshotView } from '../views.js';

const errors = { 400: ErrorBody, 404: ErrorBody, 409: ErrorBody };

/**
 * Named snapshots (taken with POST /vm/{id}/snapshot) and the templates the daemon makes:
 * listed, shown, and removed when no running VM's memory depends on them.
 */
export const snapshotRoutes: FastifyPluginAsync<{ snapshots: SnapshotService }> = async (app, { snapshots }) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const view = (name: string, kind: SnapshotKind) => {
    const s = snapshots.get(name, kind);
    return snapshotView(s, snapshots.dependents(s.name));
  };

  for (const [path, kind, what] of [
    ['/snapshots', 'snapshot', 'Named snapshots'],
    ['/templates', 'template', 'Templates: snapshots the daemon made of a VM spec right after its first VM became ready'],
  ] as const) {
    r.get(
      path,
      { schema: { summary: what, tags: ['snapshots'], response: { 200: Type.Object({ [kind === 'snapshot' ? 'snapshots' : 'templates']: Type.Array(SnapshotView) }) } } },
      async () => ({ [kind === 'snapshot' ? 'snapshots' : 'templates']: snapshots.list(kind).map((s) => snapshotView(s, snapshots.dependents(s.name))) }),
    );
    r.get(
      `${path}/:name`,
      { schema: { summary: `One of the ${kind}s`, tags: ['snapshots'], params: SnapshotRef, response: { 200: SnapshotView, ...errors } } },
      async (req) => view(req.params.name, kind),
    );
    r.delete(
      `${path}/:name`,
      { schema: { summary: `Remove a ${kind} (refused while a running VM's memory depends on it)`, tags: ['snapshots'], params: SnapshotRef, response: { 204: Type.Null(), ...errors } } },
      async (req, reply) => {
        await snapshots.remove(req.params.name, kind);
        return reply.status(204).send(null);
      },
    );
  }
};
