import { randomBytes } from 'node:crypto';
import { GuestAgent } from '../../guest/guest-agent.js';
import { UigniterError, messageOf } from '../errors.js';
import type { Step } from '../plan.js';
import { transition } from '../vm-state.js';
import type { BootContext } from './boot-context.js';

/**
 * A just-restored guest runs its renewal cold (under TCG every code path is translated
 * anew in each QEMU): a few hundred ms alone, but with 400 VMs up and 8 restores in flight
 * on this 2-core host, 2 of 414 took more than the agent's default 5 s and failed.
 */
const RESTORE_RENEW_TIMEOUT_MS = 20_000;

/**
 * Makes a restored VM its own machine before it talks to anyone. Its tap was made off the
 * bridge (`create-tap`); the NIC's link is reconnected while the vCPUs are still stopped,
 * so the guest never sees its link flap (a guest whose carrier came back just after a cut
 * measured a second with no traffic); then the vCPUs run, the guest agent (our init) takes
 * fresh entropy, the host's clock, this VM's hostname, MAC and address (and lets the app's
 * Node hooks renew their randomness), and only then is the tap put on the bridge.
 */
export const renewIdentity: Step<BootContext> = {
  name: 'renew-identity',
  async run(ctx) {
    const proc = ctx.process!;
    const lease = ctx.lease!;
    const network = ctx.deps.network;
    await proc.setLink(true);
    await proc.resume();
    let agent: GuestAgent | null = null;
    try {
      agent = new GuestAgent(await proc.openAgent());
      await agent.renew({
        ip: lease.ip,
        prefix: lease.prefix,
        gateway: lease.gateway,
        mac: lease.mac,
        hostname: ctx.vm.name,
        timeMs: ctx.deps.clock.now().getTime(),
        entropy: randomBytes(64),
        // A suspended VM resuming its own state is the same machine: its connections stay.
        keepConnections: ctx.restore?.snapshot === null,
      }, RESTORE_RENEW_TIMEOUT_MS);
    } catch (e) {
      throw new UigniterError('boot_failed', `the restored guest did not take its new identity: ${messageOf(e)}`);
    } finally {
      agent?.close();
    }
    // Back on the bridge, with its MAC pinned to the tap: nothing needs announcing.
    await network.attachTap(ctx.tap!, lease.mac);
    ctx.marks.ready = performance.now();
    const now = ctx.deps.clock.now();
    const bootMs = ctx.launchedAt === null ? null : Math.round(performance.now() - ctx.launchedAt);
    ctx.vm = transition(ctx.vm, 'running', now, { readyAt: now.toISOString(), bootMs });
    ctx.deps.save(ctx.vm);
  },
};
