import { randomBytes } from 'node:crypto';
import { GuestAgent } from '../../guest/guest-agent.js';
import { messageOf, UigniterError } from '../errors.js';
import type { BootMarks, ImageManifest, VmRecord, VmSpec } from '../models.js';
import { templateKey } from '../snapshots/template-key.js';
import type { Fleet } from '../supervision/fleet.js';
import { transition } from '../vm-state.js';

/**
 * Hands out a warm pool's spare for a create whose spec it matches: the paused VM takes
 * the create's name (hostname, DNS name), ports and stop timeout, the guest agent renews
 * its hostname, clock and entropy (it keeps the address and MAC it was given), and it
 * runs on. Null when no spare fits; a spare that fails the handout is removed and the
 * next one tried.
 */
export async function takeSpare(
  fleet: Fleet,
  image: ImageManifest,
  spec: VmSpec,
  marks: BootMarks,
  service: string | null,
  remove: (id: string) => Promise<unknown>,
): Promise<VmRecord | null> {
  const key = templateKey(image, spec);
  // The code cache is not in the template key (a restore may size its own), but a spare's
  // VMM runs already: it fits only a create that asks for the cache it has.
  const cache = spec.codeCacheMiB ?? null;
  const candidates = fleet.records
    .list()
    .filter((v) => v.pool !== null && v.state === 'paused' && v.manifest.digest === image.digest && templateKey(v.manifest, v.spec) === key && (v.spec.codeCacheMiB ?? null) === cache);
  for (const c of candidates) {
    const t0 = performance.now();
    let failed: unknown = null;
    const got = await fleet.locks.run(c.id, async () => {
      const spare = fleet.records.find(c.id);
      const ctx = fleet.supervisor.context(c.id);
      if (!spare || spare.pool === null || spare.state !== 'paused' || !ctx?.process || !ctx.lease) return null; // taken meanwhile
      // The name is claimed under the create lock, as a create claims its own.
      await fleet.locks.run('create', async () => {
        if (fleet.o.store.getVm(spec.name)) throw new UigniterError('already_exists', `a VM named '${spec.name}' already exists`, 'name');
        fleet.records.save({ ...spare, name: spec.name, spec: { ...spare.spec, name: spec.name, ports: spec.ports, stopTimeoutMs: spec.stopTimeoutMs }, pool: null, origin: 'pool', service });
      });
      marks.claimed = performance.now();
      try {
        const proc = ctx.process;
        await proc.resume();
        marks.resumed = performance.now();
        const agent = new GuestAgent(await proc.openAgent());
        try {
          await agent.renew({
            ip: ctx.lease.ip,
            prefix: ctx.lease.prefix,
            gateway: ctx.lease.gateway,
            mac: ctx.lease.mac,
            hostname: spec.name,
            timeMs: fleet.o.clock.now().getTime(),
            entropy: randomBytes(64),
            keepConnections: true, // the spare's own, not a snapshot's
          });
        } finally {
          agent.close();
        }
        marks.renewed = performance.now();
        fleet.o.network.setName(spare.name, null);
        fleet.o.network.setName(spec.name, ctx.lease.ip);
        if (spec.ports.length > 0) ctx.unpublish = await fleet.o.network.publish(spare.id, ctx.lease.ip, spec.ports);
        const now = fleet.o.clock.now();
        const running = transition(fleet.records.get(spare.id), 'running', now, { readyAt: now.toISOString(), bootMs: Math.round(performance.now() - t0) });
        ctx.vm = running;
        fleet.records.save(running);
        marks.ready = performance.now();
        return running;
      } catch (e) {
        failed = e;
        return null;
      }
    });
    if (got) return got;
    if (failed) {
      fleet.o.log(`spare ${c.name} could not be handed out, removing it: ${messageOf(failed)}`);
      await remove(c.id).catch(() => undefined);
    }
  }
  return null;
}
