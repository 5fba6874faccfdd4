import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Core } from '../../core/core.js';
import type { BootMarks } from '../../core/models.js';
import type { ImageService } from '../../core/image-service.js';
import { fromLegacyBody, isLegacyBody, programNames } from '../legacy-body.js';
import { DeleteQuery, ErrorBody, LogsQuery, RunBody, SnapshotBody, SnapshotView, StopQuery, VmRef, VmStatsView, VmView, WaitQuery } from '../schemas.js';
import { snapshotView, vmView } from '../views.js';

const VmList = Type.Object({ vms: Type.Array(VmView) });

/**
 * Server-Timing: daemon work before the VMM starts, VMM start-up, then the guest until
 * ready; for a pool's hand-out: claiming the spare, resuming it, renewing its identity
 * through the agent, then the rest until the answer is ready.
 */
function serverTiming(t0: number, m: BootMarks): string {
  const parts: string[] = [];
  if (m.claimed !== undefined && m.resumed !== undefined && m.renewed !== undefined && m.ready !== undefined) {
    parts.push(`claim;dur=${(m.claimed - t0).toFixed(2)}`, `resume;dur=${(m.resumed - m.claimed).toFixed(2)}`, `renew;dur=${(m.renewed - m.resumed).toFixed(2)}`, `publish;dur=${(m.ready - m.renewed).toFixed(2)}`);
  }
  if (m.vmmStart !== undefined) parts.push(`plan;dur=${(m.vmmStart - t0).toFixed(2)}`);
  if (m.vmmStart !== undefined && m.vmmLaunched !== undefined) parts.push(`vmm;dur=${(m.vmmLaunched - m.vmmStart).toFixed(2)}`);
  if (m.vmmLaunched !== undefined && m.ready !== undefined) parts.push(`guest;dur=${(m.ready - m.vmmLaunched).toFixed(2)}`);
  return parts.join(', ');
}

const errors = { 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 429: ErrorBody, 502: ErrorBody, 504: ErrorBody };
const flag = (v: string | undefined): boolean => v === '1' || v === 'true';

declare module 'fastify' {
  interface FastifyRequest {
    legacyRun?: boolean;
  }
}

/** The VM resource: the seed's three calls (run, start, stop) and what users expect beside them. */
export const vmRoutes: FastifyPluginAsync<{ core: Core; images: ImageService }> = async (app, { core, images }) => {
  const { vms, records, logs, stats } = core;
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.post(
    '/vm/run',
    {
      schema: {
        summary: 'Create a VM from an image and boot it',
        description: 'Also accepts the original Uigniter body {"image_name", "cmdline", "read_only"}; the answer then carries ip_address too.',
        tags: ['vm'],
        querystring: WaitQuery,
        body: RunBody,
        response: { 201: VmView, ...errors },
      },
      preValidation: async (req) => {
        const raw: unknown = req.body;
        if (isLegacyBody(raw)) {
          // An unknown image is the create's to refuse (404 naming image_name's value).
          const name = typeof raw.image_name === 'string' ? raw.image_name : null;
          const image = name ? await images.get(name).catch(() => null) : null;
          req.body = fromLegacyBody(raw, image ? programNames(image) : undefined);
          req.legacyRun = true;
        }
      },
    },
    async (req, reply) => {
      const t0 = performance.now();
      const marks: BootMarks = {};
      const vm = await vms.create(req.body, req.query.wait === 'launched' ? 'launched' : 'ready', marks);
      const view = vmView(vm);
      if (req.legacyRun && vm.ip) view.ip_address = vm.ip;
      return reply.status(201).header('server-timing', serverTiming(t0, marks)).send(view);
    },
  );

  r.post(
    '/vm/:id/start',
    { schema: { summary: 'Boot a stopped VM again, with its spec and its address', tags: ['vm'], params: VmRef, querystring: WaitQuery, response: { 200: VmView, ...errors } } },
    async (req, reply) => {
      const t0 = performance.now();
      const marks: BootMarks = {};
      const vm = await vms.start(req.params.id, req.query.wait === 'launched' ? 'launched' : 'ready', marks);
      return reply.header('server-timing', serverTiming(t0, marks)).send(vmView(vm));
    },
  );

  r.post(
    '/vm/:id/stop',
    { schema: { summary: 'Stop a VM: SIGTERM to the app, forced off after the timeout', tags: ['vm'], params: VmRef, querystring: StopQuery, response: { 200: VmView, ...errors } } },
    async (req) =>
      vmView(
        await vms.stop(req.params.id, {
          ...(req.query.timeout === undefined ? {} : { timeoutMs: Number(req.query.timeout) * 1000 }),
          suspend: flag(req.query.suspend),
        }),
      ),
  );

  r.post(
    '/vm/:id/pause',
    { schema: { summary: 'Pause a VM: its vCPUs stop; it keeps its memory, address and connections', tags: ['vm'], params: VmRef, response: { 200: VmView, ...errors } } },
    async (req) => vmView(await vms.pause(req.params.id)),
  );

  r.post(
    '/vm/:id/resume',
    { schema: { summary: 'Resume a paused VM', tags: ['vm'], params: VmRef, response: { 200: VmView, ...errors } } },
    async (req) => vmView(await vms.resume(req.params.id)),
  );

  r.post(
    '/vm/:id/snapshot',
    {
      schema: {
        summary: 'Save a named snapshot of a running VM (memory, device state, its root\'s writable layer); the VM runs on',
        tags: ['vm', 'snapshots'],
        params: VmRef,
        body: SnapshotBody,
        response: { 201: SnapshotView, ...errors },
      },
    },
    async (req, reply) => {
      const s = await core.snapshots.snapshot(req.params.id, req.body.name);
      return reply.status(201).send(snapshotView(s, core.snapshots.dependents(s.name)));
    },
  );

  // The list is served from a cache of its JSON, made again only after a VM changed:
  // listing is the hot read of dashboards and autoscalers.
  let listCache = { version: -1, body: '' };
  r.get(
    '/vm',
    { schema: { summary: 'List VMs', tags: ['vm'], response: { 200: VmList } } },
    async (_req, reply) => {
      const version = records.version;
      if (listCache.version !== version) {
        const payload = { vms: records.list().map(vmView) };
        listCache = { version, body: JSON.stringify(payload) };
      }
      // The cached text is already the schema's JSON; the typed send() only knows the object form.
      return reply.type('application/json; charset=utf-8').serializer((p) => p as string).send(listCache.body as never);
    },
  );

  r.get(
    '/vm/:id',
    { schema: { summary: 'One VM, by id or name', tags: ['vm'], params: VmRef, response: { 200: VmView, ...errors } } },
    async (req) => vmView(records.get(req.params.id)),
  );

  r.delete(
    '/vm/:id',
    { schema: { summary: 'Delete a VM (stopping it first); its address is freed, its volumes kept unless volumes=1', tags: ['vm'], params: VmRef, querystring: DeleteQuery, response: { 204: Type.Null(), ...errors } } },
    async (req, reply) => {
      await vms.remove(req.params.id, { force: flag(req.query.force), deleteVolumes: flag(req.query.volumes) });
      return reply.status(204).send(null);
    },
  );

  r.get(
    '/vm/:id/stats',
    {
      schema: {
        summary: "What a running VM's VMM holds and burns, and its translation cache (read now); 409 when the VM does not run",
        tags: ['vm'],
        params: VmRef,
        response: { 200: VmStatsView, ...errors },
      },
    },
    async (req) => stats.stats(req.params.id),
  );

  r.get(
    '/vm/:id/logs',
    {
      schema: {
        summary: 'The VM console (app output); follow=1 streams until the VM stops',
        tags: ['vm'],
        params: VmRef,
        querystring: LogsQuery,
        response: { 200: Type.String(), ...errors },
      },
    },
    async (req, reply) => {
      const tail = req.query.tail === undefined ? undefined : Number(req.query.tail);
      if (!flag(req.query.follow)) return reply.type('text/plain; charset=utf-8').send(await logs.read(req.params.id, tail));
      records.get(req.params.id); // 404 before the stream starts
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache' });
      const closed = new AbortController();
      req.raw.on('close', () => closed.abort());
      await logs.follow(req.params.id, tail, (t) => res.write(t), () => res.end(), closed.signal);
    },
  );
};
