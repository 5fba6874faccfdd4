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
  /** Guests may go beyond the host (`--egress`); the host side is in `egress.ts`. */
  egress?: boolean;
}

export const TABLE = 'uigniter';

/**
 * The one nftables table the daemon owns inside its network namespace. Every packet from
 * a guest to anything outside the bridge crosses this namespace's forward hook, so a drop
 * policy there is complete: guests reach each other (bridged), the host reaches them (and
 * gets replies), and guests reach the host only for DNS and the ports allowed.
 *
 * Without egress there is no way out: no outbound NAT. With egress, guests may also send
 * to any address but the host's veth address (which stays limited to DNS and the allowed
 * ports) and leave masqueraded as the namespace's veth address; the host-side table
 * (`egress.ts`) forwards that on, and drops whatever is addressed to the host itself.
 */
export function firewallRules(c: FirewallConfig): string {
  const allowed = c.allowHostPorts.length
    ? `    iifname "${c.bridge}" ip daddr ${c.hostAddress} tcp dport { ${c.allowHostPorts.join(', ')} } accept\n`
    : '';
  const egress = c.egress
    ? `    iifname "${c.bridge}" oifname "${c.uplink}" ip daddr != ${c.hostAddress} accept\n`
    : '';
  const nat = c.egress
    ? `  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    iifname "${c.bridge}" oifname "${c.uplink}" ip daddr != ${c.hostAddress} masquerade
  }
`
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
${allowed}${egress}  }
${nat}}
`;
}

export async function applyFirewall(c: FirewallConfig): Promise<void> {
  await inNetns(c.netns, 'nft', ['-f', '-'], firewallRules(c));
}
