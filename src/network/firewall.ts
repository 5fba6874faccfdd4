import { inNetns } from './ip-command.js';

export interface FirewallConfig {
  netns: string;
  bridge: string;
  /** The namespace end of the veth pair (towards the host). */
  uplink: string;
  /** The host's address on the veth pair, where the daemon serves DNS. */
  hostAddress: string;
  /** Host TCP ports guests may connect to on hostAddress. */
  allowHostPorts: number[];
}

export const TABLE = 'uigniter';

/**
 * The one nftables table the daemon owns, inside its network namespace. Every packet
 * from a guest to anything outside the bridge crosses this namespace's forward hook, so a
 * drop policy there is complete: guests reach each other (bridged), the host reaches them
 * (and gets replies), and guests reach the host only for DNS and the ports allowed. There
 * is no route out: no outbound NAT.
 */
export function firewallRules(c: FirewallConfig): string {
  const allowed = c.allowHostPorts.length
    ? `    iifname "${c.bridge}" ip daddr ${c.hostAddress} tcp dport { ${c.allowHostPorts.join(', ')} } accept\n`
    : '';
  return `table inet ${TABLE}
delete table inet ${TABLE}
table inet ${TABLE} {
  chain input {
    type filter hook input priority filter; policy drop;
    iif "lo" accept
    ct state established,related accept
    ip protocol icmp icmp type echo-request accept
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "${c.bridge}" oifname "${c.bridge}" accept
    iifname "${c.uplink}" oifname "${c.bridge}" accept
    iifname "${c.bridge}" ip daddr ${c.hostAddress} udp dport 53 accept
    iifname "${c.bridge}" ip daddr ${c.hostAddress} tcp dport 53 accept
${allowed}  }
}
`;
}

export async function applyFirewall(c: FirewallConfig): Promise<void> {
  await inNetns(c.netns, 'nft', ['-f', '-'], firewallRules(c));
}
