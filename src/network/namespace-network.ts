import { run } from '../util/exec.js';
import { disableHostEgress, enableHostEgress, VETH_GROUP, type EgressLink } from './egress.js';
import { applyFirewall, type FirewallConfig } from './firewall.js';
import { formatCidr } from './cidr.js';
import { IpCommand, inNetns, netnsExists } from './ip-command.js';
import { macForIp, type VmNetworkLayout } from './vm-network-config.js';

/**
 * The VM network on the host: a namespace owned by the daemon holding the bridge, the taps
 * and the QEMU processes, joined to the host by a veth pair with a route to the guest
 * subnet. Nothing of it lives in the host's namespace but one veth end and its route, and
 * `ip netns del` plus deleting that veth removes all of it. With egress, the host also has
 * one nftables table and forwarding on (`egress.ts`), both undone by `disableEgress` and
 * `teardown`.
 */
export class NamespaceNetwork {
  readonly host = new IpCommand(null);
  readonly ns: IpCommand;

  constructor(readonly layout: VmNetworkLayout) {
    this.ns = new IpCommand(layout.netns);
  }

  /** Creates what is missing; safe to run on every daemon start. */
  async setup(log: (m: string) => void = () => undefined): Promise<void> {
    const l = this.layout;
    if (!(await netnsExists(l.netns))) await run('ip', ['netns', 'add', l.netns]);
    const nsSteps = ['link set lo up'];
    // A fixed MAC: a bridge without one takes its lowest port's and changes as taps come and
    // go, and a restored clone remembers its gateway's MAC from its snapshot.
    if (!(await this.ns.linkExists(l.bridge))) nsSteps.push(`link add ${l.bridge} address ${macForIp(l.gateway)} type bridge`);
    nsSteps.push(`addr replace ${l.gateway}/${l.subnet.prefix} dev ${l.bridge}`, `link set ${l.bridge} up`);
    await this.ns.batch(nsSteps);
    if (!(await this.host.linkExists(l.hostVeth))) {
      await this.host.run('link', 'add', l.hostVeth, 'type', 'veth', 'peer', 'name', l.nsVeth, 'netns', l.netns);
    }
    await this.host.batch([
      `addr replace ${l.hostAddress}/${l.linkPrefix} dev ${l.hostVeth}`,
      `link set ${l.hostVeth} group ${VETH_GROUP} up`,
    ]);
    await this.ns.batch([
      `addr replace ${l.nsAddress}/${l.linkPrefix} dev ${l.nsVeth}`,
      `link set ${l.nsVeth} up`,
      `route replace default via ${l.hostAddress} dev ${l.nsVeth}`,
    ]);
    await this.host.run('route', 'replace', formatCidr(l.subnet), 'via', l.nsAddress, 'dev', l.hostVeth);
    await inNetns(l.netns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    if (!l.egress) {
      // Close the namespace first, then the host (a crashed --egress daemon may have left both).
      await applyFirewall(this.firewall(false));
      await disableHostEgress(l.netns, log);
      return;
    }
    // The host side first: guests are let out only once the host masquerades and filters.
    await enableHostEgress(this.egressLink(), log);
    try {
      await applyFirewall(this.firewall(true));
    } catch (e) {
      await disableHostEgress(l.netns, log).catch(() => undefined);
      throw e;
    }
  }

  private firewall(egress: boolean): FirewallConfig {
    const l = this.layout;
    return { netns: l.netns, bridge: l.bridge, uplink: l.nsVeth, hostAddress: l.hostAddress, allowHostPorts: l.allowHostPorts, egress };
  }

  private egressLink(): EgressLink {
    const l = this.layout;
    return { netns: l.netns, hostVeth: l.hostVeth, hostAddress: l.hostAddress, linkNet: l.linkNet };
  }

  /**
   * Takes egress away while the namespace stays (a daemon stopping and leaving its VMs to
   * the next one): guests lose the way out with the daemon that gave it, and the host gets
   * its forwarding setting back. The next daemon decides again.
   */
  async disableEgress(log: (m: string) => void = () => undefined): Promise<void> {
    const l = this.layout;
    if (await netnsExists(l.netns)) await applyFirewall(this.firewall(false));
    await disableHostEgress(l.netns, log);
  }

  /**
   * Removes the namespace (bridge, taps, firewall with it), the veth pair and the route,
   * and the host's egress table if there is one (restoring forwarding).
   */
  async teardown(log: (m: string) => void = () => undefined): Promise<void> {
    const l = this.layout;
    if (await this.host.linkExists(l.hostVeth)) await this.host.run('link', 'del', l.hostVeth).catch(() => undefined);
    if (await netnsExists(l.netns)) await run('ip', ['netns', 'del', l.netns]);
    await disableHostEgress(l.netns, log);
  }

  /**
   * Creates a tap for the guest it carries, its address pinned to its MAC (see `pinMac`):
   * on the bridge with its MAC pinned, or `detached` (off the bridge until `attachTap`).
   */
  async createTap(name: string, guest: { mac: string; ip: string }, detached: boolean): Promise<void> {
    await this.ns.batch([
      `tuntap add dev ${name} mode tap`,
      ...(detached ? [] : this.portLines(name)),
      `link set dev ${name} up`,
      this.neighbourLine(guest),
    ]);
    if (!detached) await this.pinMac(name, guest.mac);
  }

  /** Puts a detached tap on the bridge with its guest's MAC pinned to it. */
  async attachTap(name: string, mac: string): Promise<void> {
    await this.ns.batch(this.portLines(name));
    await this.pinMac(name, mac);
  }

  /**
   * A tap joins the bridge as a port with proxy_arp on: the bridge answers an ARP request
   * that comes in on it from the namespace's neighbour table (a permanent entry for every
   * leased address, see `pinMac`; the gateway is the namespace's own address), and floods
   * nothing to it: no other guest's ARP, gratuitous ARP or broadcast. Before, a guest
   * resolving its gateway or a peer woke every VM on the bridge (under TCG each wake-up is
   * CPU): with 150 idle clones, 32 first GETs sent 4,842 frames to the taps and took 0.9-1
   * s to connect at p50; with proxy_arp 206 frames and 0.15-0.32 s.
   */
  private portLines(name: string): string[] {
    return [`link set dev ${name} master ${this.layout.bridge}`, `link set dev ${name} type bridge_slave proxy_arp on`];
  }

  /**
   * Pins a guest's MAC to its tap: the bridge forwards it there by a static entry, never
   * learned from a frame, so nothing for it is flooded as unknown and no announcement is
   * needed when a clone's tap joins the bridge. With the permanent neighbour entry
   * `createTap` adds (the namespace never ARPs for the guest), nothing about a create is
   * broadcast; the MAC is derived from the address, so the guest's peers' ARP entries stay
   * right too. The entry belongs to the tap's bridge port: it goes with the tap.
   */
  private async pinMac(tap: string, mac: string): Promise<void> {
    await run('bridge', ['-n', this.layout.netns, 'fdb', 'replace', mac, 'dev', tap, 'master', 'static']);
  }

  /** Forgets an address's permanent neighbour entry (its lease is released). */
  async unpinAddress(ip: string): Promise<void> {
    await this.ns.run('neigh', 'del', ip, 'dev', this.layout.bridge).catch(() => undefined);
  }

  private neighbourLine(guest: { mac: string; ip: string }): string {
    return `neigh replace ${guest.ip} lladdr ${guest.mac} dev ${this.layout.bridge} nud permanent`;
  }

  async deleteTap(name: string): Promise<void> {
    try {
      await this.ns.run('link', 'del', 'dev', name);
    } catch (e) {
      if (await this.ns.linkExists(name)) throw e;
    }
  }

  async listTaps(): Promise<string[]> {
    const links = await this.ns.json<{ ifname: string }[]>('link', 'show').catch(() => []);
    return links.map((l) => l.ifname).filter((n) => n.startsWith(this.layout.tapPrefix));
  }
}
