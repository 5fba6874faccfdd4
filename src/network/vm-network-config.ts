import { invalid } from '../core/errors.js';
import { formatCidr, intToIp, nth, overlaps, parseCidr, size, type Cidr } from './cidr.js';

export interface VmNetworkOptions {
  /** Network namespace the daemon creates and owns. */
  netns: string;
  bridge: string;
  /** Guest subnet; the bridge takes its first address and is the guests' gateway. */
  subnet: string;
  /** /30 for the veth pair between the host and the namespace; derived when absent. */
  linkNet?: string;
  allowHostPorts: number[];
  dnsDomain: string;
  /**
   * Outbound NAT: guests reach addresses beyond the host through the host's routes
   * (`uigniter daemon --egress`). Off by default: guests then reach nothing but each other,
   * the daemon's DNS and the allowed host ports.
   */
  egress: boolean;
}

export const DEFAULT_NETWORK: VmNetworkOptions = {
  netns: 'uigniter',
  bridge: 'uig0',
  subnet: '172.30.0.0/22',
  allowHostPorts: [],
  dnsDomain: 'uigniter.internal',
  egress: false,
};

export interface VmNetworkLayout {
  netns: string;
  bridge: string;
  subnet: Cidr;
  gateway: string;
  /** Host side of the veth pair: in the host's namespace. */
  hostVeth: string;
  hostAddress: string;
  /** Namespace side of the veth pair. */
  nsVeth: string;
  nsAddress: string;
  linkPrefix: number;
  /** The veth pair's /30, e.g. 172.30.255.252/30. */
  linkNet: string;
  dnsDomain: string;
  allowHostPorts: number[];
  tapPrefix: string;
  egress: boolean;
}

const IFNAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,12}$/;

/** Works out every name and address of the VM network from the options, checking them. */
export function layoutFor(o: VmNetworkOptions): VmNetworkLayout {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,30}$/.test(o.netns)) throw invalid('netns', `network namespace name '${o.netns}' is invalid`);
  // Room for the "-h"/"-n" suffixes within Linux's 15-character interface names.
  if (!IFNAME.test(o.bridge)) throw invalid('bridge', `bridge name '${o.bridge}' must be 1-13 of [a-zA-Z0-9_.-]`);
  const subnet = parseCidr(o.subnet);
  if (subnet.prefix > 29) throw invalid('subnet', 'the VM subnet must be /29 or larger');
  let link: Cidr;
  if (o.linkNet) {
    link = parseCidr(o.linkNet, 'linkNet');
    if (link.prefix !== 30) throw invalid('linkNet', 'the link network must be a /30');
  } else {
    // The last /30 of the /16 around the subnet, e.g. 172.30.255.252/30.
    link = { network: ((subnet.network & 0xffff0000) | 0xfffc) >>> 0, prefix: 30 };
  }
  if (overlaps(link, subnet)) throw invalid('linkNet', `the link network ${intToIp(link.network)}/30 overlaps the subnet ${o.subnet}`);
  for (const p of o.allowHostPorts) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw invalid('allowHostPorts', `host port ${p} is not a port`);
  }
  return {
    netns: o.netns,
    bridge: o.bridge,
    subnet,
    gateway: nth(subnet, 1),
    hostVeth: `${o.bridge}-h`,
    hostAddress: nth(link, 1),
    nsVeth: `${o.bridge}-n`,
    nsAddress: nth(link, 2),
    linkPrefix: 30,
    linkNet: formatCidr(link),
    dnsDomain: o.dnsDomain,
    allowHostPorts: o.allowHostPorts,
    tapPrefix: 'vt',
    egress: o.egress === true,
  };
}

/** Guest addresses: the subnet without network, gateway and broadcast. */
export function* guestAddresses(l: VmNetworkLayout, startAfter?: string): Generator<string> {
  const first = 2;
  const last = size(l.subnet) - 2;
  const all: string[] = [];
  for (let i = first; i <= last; i++) all.push(nth(l.subnet, i));
  const at = startAfter ? all.indexOf(startAfter) + 1 : 0;
  for (let k = 0; k < all.length; k++) yield all[(at + k) % all.length]!;
}

/** A locally administered MAC that embeds the IPv4 address: a reused address keeps its MAC. */
export function macForIp(ip: string): string {
  return ['52', '55', ...ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}
