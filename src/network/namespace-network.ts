import { run } from '../util/exec.js';
import { applyFirewall } from './firewall.js';
import { formatCidr } from './cidr.js';
import { IpCommand, inNetns, netnsExists } from './ip-command.js';
import type { VmNetworkLayout } from './vm-network-config.js';

/**
 * The VM network on the host: a namespace owned by the daemon holding the bridge, the taps
 * and the QEMU processes, joined to the host by a veth pair with a route to the guest
 * subnet. Nothing of it lives in the host's namespace but one veth end and its route, and
 * `ip netns del` plus deleting that veth removes all of it.
 */
export class NamespaceNetwork {
  readonly host = new IpCommand(null);
  readonly ns: IpCommand;

  constructor(readonly layout: VmNetworkLayout) {
    this.ns = new IpCommand(layout.netns);
  }

  /** Creates what is missing; safe to run on every daemon start. */
  async setup(): Promise<void> {
    const l = this.layout;
    if (!(await netnsExists(l.netns))) await run('ip', ['netns', 'add', l.netns]);
    const nsSteps = ['link set lo up'];
    if (!(await this.ns.linkExists(l.bridge))) nsSteps.push(`link add ${l.bridge} type bridge`);
    nsSteps.push(`addr replace ${l.gateway}/${l.subnet.prefix} dev ${l.bridge}`, `link set ${l.bridge} up`);
    await this.ns.batch(nsSteps);
    if (!(await this.host.linkExists(l.hostVeth))) {
      await this.host.run('link', 'add', l.hostVeth, 'type', 'veth', 'peer', 'name', l.nsVeth, 'netns', l.netns);
    }
    await this.host.batch([`addr replace ${l.hostAddress}/${l.linkPrefix} dev ${l.hostVeth}`, `link set ${l.hostVeth} up`]);
    await this.ns.batch([
      `addr replace ${l.nsAddress}/${l.linkPrefix} dev ${l.nsVeth}`,
      `link set ${l.nsVeth} up`,
      `route replace default via ${l.hostAddress} dev ${l.nsVeth}`,
    ]);
    await this.host.run('route', 'replace', formatCidr(l.subnet), 'via', l.nsAddress, 'dev', l.hostVeth);
    await inNetns(l.netns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    await applyFirewall({
      netns: l.netns,
      bridge: l.bridge,
      uplink: l.nsVeth,
      hostAddress: l.hostAddress,
      allowHostPorts: l.allowHostPorts,
    });
  }

  /** Removes the namespace (bridge, taps, firewall with it), the veth pair and the route. */
  async teardown(): Promise<void> {
    const l = this.layout;
    if (await this.host.linkExists(l.hostVeth)) await this.host.run('link', 'del', l.hostVeth).catch(() => undefined);
    if (await netnsExists(l.netns)) await run('ip', ['netns', 'del', l.netns]);
  }

  async createTap(name: string): Promise<void> {
    await this.ns.batch([
      `tuntap add dev ${name} mode tap`,
      `link set dev ${name} master ${this.layout.bridge}`,
      `link set dev ${name} up`,
    ]);
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
