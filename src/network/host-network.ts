import { UigniterError } from '../core/errors.js';
import type { LeaseStore, NetworkLease, VmNetwork } from '../core/ports.js';
import { DnsServer } from './dns-server.js';
import { NamespaceNetwork } from './namespace-network.js';
import { forwardPort } from './port-forwarder.js';
import { addTapGuard, applyGuardTable, removeTapGuard, type TapIdentity } from './tap-guard.js';
import { guestAddresses, layoutFor, macForIp, type VmNetworkLayout, type VmNetworkOptions } from './vm-network-config.js';

/**
 * The VmNetwork the daemon uses: addresses leased from the SQLite store, a tap per VM on
 * the bridge in the daemon's namespace, names served by DNS on the host's veth address,
 * published ports proxied from the host. Each tap lets its guest send only as its lease's
 * MAC and address (`tap-guard.ts`): the guard is added with the tap and removed with it.
 */
export class HostNetwork implements VmNetwork {
  readonly layout: VmNetworkLayout;
  readonly namespace: NamespaceNetwork;
  readonly dns: DnsServer;
  private dnsUp = false;

  constructor(
    options: VmNetworkOptions,
    private readonly leases: LeaseStore,
    private readonly log: (msg: string) => void = () => undefined,
  ) {
    this.layout = layoutFor(options);
    this.namespace = new NamespaceNetwork(this.layout);
    this.dns = new DnsServer(this.layout.dnsDomain);
  }

  get netns(): string {
    return this.layout.netns;
  }

  async start(): Promise<void> {
    await this.namespace.setup(this.log);
    // Taps a previous daemon left running (adopted VMs) keep their guard; the table is
    // replaced with theirs in one transaction.
    const taps = new Set(await this.listTaps());
    const guards = this.leases
      .listLeases()
      .map((l) => ({ tap: this.tapName(l.vmId), mac: l.mac, ip: l.ip }))
      .filter((g) => taps.has(g.tap));
    await applyGuardTable(this.layout.netns, this.layout.tapPrefix, guards);
    try {
      await this.dns.listen(this.layout.hostAddress, 53);
      this.dnsUp = true;
    } catch (e) {
      this.log(`DNS for VM names is unavailable: cannot listen on ${this.layout.hostAddress}:53 (${String(e)})`);
    }
  }

  /** Stops serving; with egress, takes it away again (host table, forwarding). */
  async stop(): Promise<void> {
    await this.dns.close();
    if (this.layout.egress) {
      await this.namespace.disableEgress(this.log).catch((e: unknown) => this.log(`egress: could not remove it: ${String(e)}`));
    }
  }

  async lease(vmId: string): Promise<NetworkLease> {
    const l =
      this.leases.leaseFor(vmId) ??
      this.leases.takeLease(vmId, guestAddresses(this.layout, this.leases.lastLeasedIp() ?? undefined), macForIp, new Date().toISOString());
    if (!l) {
      throw new UigniterError('limit_exceeded', 'no free address left in the VM subnet: every address is leased');
    }
    return {
      ip: l.ip,
      mac: l.mac,
      prefix: this.layout.subnet.prefix,
      gateway: this.layout.gateway,
      dns: this.dnsUp ? [this.layout.hostAddress] : [],
      search: this.layout.dnsDomain,
    };
  }

  async release(vmId: string): Promise<void> {
    const lease = this.leases.leaseFor(vmId);
    if (lease) await this.namespace.unpinAddress(lease.ip);
    this.leases.releaseLease(vmId);
  }

  leasedVmIds(): string[] {
    return this.leases.listLeases().map((l) => l.vmId);
  }

  tapName(vmId: string): string {
    return `${this.layout.tapPrefix}${vmId.slice(0, 12)}`;
  }

  /** Who the VM's tap must carry: its lease (the lease-address step runs before create-tap). */
  private identity(vmId: string, tap: string): TapIdentity {
    const l = this.leases.leaseFor(vmId);
    if (!l) throw new UigniterError('internal', `VM ${vmId} has no address lease: its tap would have no identity to enforce`);
    return { tap, mac: l.mac, ip: l.ip };
  }

  async createTap(vmId: string, options: { detached?: boolean } = {}): Promise<string> {
    const tap = this.tapName(vmId);
    const guard = this.identity(vmId, tap);
    const detached = options.detached ?? false;
    const makeTap = async (): Promise<void> => {
      try {
        await this.namespace.createTap(tap, guard, detached);
      } catch (e) {
        // Only a crash leaves a tap of this name behind: replace it. (Checking first would
        // cost an `ip` process on every boot.)
        if (!(await this.namespace.ns.linkExists(tap))) throw e;
        await this.namespace.deleteTap(tap);
        await this.namespace.createTap(tap, guard, detached);
      }
    };
    // The guard (an nft transaction, about 7 ms) and the tap (`ip`, then `bridge`) at once:
    // until its guard is in the map, a tap of our prefix gets nothing onto the bridge (the
    // table fails closed), and nothing sends on it before its VMM starts.
    const [guarded, made] = await Promise.allSettled([addTapGuard(this.layout.netns, guard), makeTap()]);
    if (guarded.status === 'rejected' || made.status === 'rejected') {
      // A step that fails is not undone: take away what was made.
      if (made.status === 'fulfilled') await this.namespace.deleteTap(tap).catch(() => undefined);
      await removeTapGuard(this.layout.netns, tap).catch(() => undefined);
      throw guarded.status === 'rejected' ? guarded.reason : (made as PromiseRejectedResult).reason;
    }
    return tap;
  }

  async attachTap(tap: string, mac: string): Promise<void> {
    await this.namespace.attachTap(tap, mac);
  }

  async deleteTap(tap: string): Promise<void> {
    // Both at once (an nft transaction that deletes a chain waits for an RCU grace period,
    // 17-19 ms here): a tap without its guard gets nothing onto the bridge. A guard left
    // behind is harmless (its tap is gone; a new tap of that name replaces it).
    await Promise.all([
      this.namespace.deleteTap(tap),
      removeTapGuard(this.layout.netns, tap).catch((e: unknown) => this.log(`tap guard of ${tap}: could not remove it: ${String(e)}`)),
    ]);
  }

  listTaps(): Promise<string[]> {
    return this.namespace.listTaps();
  }

  async publish(_vmId: string, ip: string, ports: { hostAddr: string; hostPort: number; guestPort: number }[]): Promise<() => Promise<void>> {
    const undos: (() => Promise<void>)[] = [];
    try {
      for (const p of ports) undos.push(await forwardPort(p.hostAddr, p.hostPort, ip, p.guestPort));
    } catch (e) {
      for (const u of undos.reverse()) await u();
      throw e;
    }
    return async () => {
      for (const u of undos.reverse()) await u();
    };
  }

  setName(name: string, ip: string | null): void {
    this.dns.set(name, ip);
  }

  setServiceAddresses(name: string, ips: string[]): void {
    this.dns.setAll(name, ips);
  }
}
