import { inNetns } from './ip-command.js';

/**
 * Anti-spoofing on the VM bridge: a guest may only send as itself. Every frame a tap brings
 * onto the bridge must carry its VM's leased MAC as Ethernet source, and then be IPv4 from
 * its leased address, ARP whose sender (hardware and protocol) is that MAC and address, or
 * RARP (QEMU's announcement); anything else from the tap is dropped: another source MAC,
 * another source IP (a guest that gave itself a second address, or changed its own), ARP
 * claiming another address, VLAN tags, IPv6 (guests have none).
 *
 * The check is in a table of the bridge family in the daemon's namespace,
 * `bridge uigniter-guard`, hooked at prerouting: it sees every frame that enters the bridge
 * from a port, before the bridge forwards it to a peer VM or hands it to the namespace's IP
 * stack (the way to the host), so one rule covers guest to guest and guest to host. The
 * `inet uigniter` table (`firewall.ts`) decides where a guest may go; this one decides who
 * it may claim to be.
 *
 * One chain per tap (`guard_<tap>`), entered through the verdict map `taps` keyed by the
 * tap's name: adding and removing a tap's guard touches nothing of the other taps, and a
 * tap of the daemon's prefix with no entry in the map (between its creation and its guard,
 * or a crash's leftover with no lease) gets nothing onto the bridge: the table fails closed.
 * A tap off the bridge (a clone before its renewal, which still has its template's
 * identity) is not seen by these hooks at all, nor does it need to be.
 */
export const GUARD_TABLE = 'uigniter-guard';

/** Who a tap's guest is: the lease's MAC and IPv4 address. */
export interface TapIdentity {
  tap: string;
  mac: string;
  ip: string;
}

const TAP_NAME = /^[A-Za-z0-9_.-]{1,15}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** The names and addresses go into an nft script: refuse anything that could change its meaning. */
function checked(g: TapIdentity): TapIdentity {
  if (!TAP_NAME.test(g.tap)) throw new Error(`tap guard: bad interface name ${JSON.stringify(g.tap)}`);
  const mac = g.mac.toLowerCase();
  if (!MAC.test(mac)) throw new Error(`tap guard: bad MAC ${JSON.stringify(g.mac)} for ${g.tap}`);
  if (!IPV4.test(g.ip)) throw new Error(`tap guard: bad IPv4 address ${JSON.stringify(g.ip)} for ${g.tap}`);
  return { tap: g.tap, mac, ip: g.ip };
}

function checkedPrefix(tapPrefix: string): string {
  if (!/^[A-Za-z0-9_.-]{1,14}$/.test(tapPrefix)) throw new Error(`tap guard: bad tap prefix ${JSON.stringify(tapPrefix)}`);
  return tapPrefix;
}

export function guardChain(tap: string): string {
  return `guard_${tap}`;
}

/** The rules of one tap's chain, in order. */
export function guardRules(g: TapIdentity): string[] {
  const { mac, ip } = checked(g);
  return [
    `ether saddr != ${mac} drop`,
    `ether type ip ip saddr ${ip} accept`,
    `ether type arp arp htype 1 arp ptype ip arp hlen 6 arp plen 4 arp saddr ether ${mac} arp saddr ip ${ip} accept`,
    // QEMU's self-announcement (RARP) of the NIC's MAC, checked above.
    `ether type 0x8035 accept`,
    `drop`,
  ];
}

/** Commands that add (or replace) one tap's guard; idempotent. */
function addCommands(g: TapIdentity): string[] {
  const { tap } = checked(g);
  const chain = guardChain(tap);
  return [
    `add chain bridge ${GUARD_TABLE} ${chain}`,
    `flush chain bridge ${GUARD_TABLE} ${chain}`,
    ...guardRules(g).map((r) => `add rule bridge ${GUARD_TABLE} ${chain} ${r}`),
    `add element bridge ${GUARD_TABLE} taps { "${tap}" : goto ${chain} }`,
  ];
}

/**
 * The whole table, replacing an older copy of itself atomically, with the guards of the
 * taps that exist (a daemon starting again: its adopted VMs keep theirs without a gap).
 */
export function guardTableScript(tapPrefix: string, guards: TapIdentity[]): string {
  const prefix = checkedPrefix(tapPrefix);
  const lines = [
    `table bridge ${GUARD_TABLE}`,
    `delete table bridge ${GUARD_TABLE}`,
    `table bridge ${GUARD_TABLE} {`,
    `  map taps {`,
    `    type ifname : verdict`,
    `  }`,
    `  chain prerouting {`,
    `    type filter hook prerouting priority filter; policy accept;`,
    `    iifname vmap @taps`,
    // A tap of ours that has no guard (yet, or any more) brings nothing onto the bridge.
    `    iifname "${prefix}*" drop`,
    `  }`,
    `}`,
    ...guards.flatMap(addCommands),
  ];
  return `${lines.join('\n')}\n`;
}

/** Adds one tap's guard (or replaces it with a new identity). */
export function addGuardScript(g: TapIdentity): string {
  return `${addCommands(g).join('\n')}\n`;
}

/**
 * Removes one tap's guard. Adding the entry first makes it succeed whether or not the guard
 * was there (nft 1.0.6 has no `destroy`), in one atomic transaction.
 */
export function removeGuardScript(tap: string): string {
  if (!TAP_NAME.test(tap)) throw new Error(`tap guard: bad interface name ${JSON.stringify(tap)}`);
  const chain = guardChain(tap);
  return [
    `add chain bridge ${GUARD_TABLE} ${chain}`,
    `add element bridge ${GUARD_TABLE} taps { "${tap}" : goto ${chain} }`,
    `delete element bridge ${GUARD_TABLE} taps { "${tap}" }`,
    `delete chain bridge ${GUARD_TABLE} ${chain}`,
    '',
  ].join('\n');
}

export async function applyGuardTable(netns: string, tapPrefix: string, guards: TapIdentity[]): Promise<void> {
  await inNetns(netns, 'nft', ['-f', '-'], guardTableScript(tapPrefix, guards));
}

export async function addTapGuard(netns: string, g: TapIdentity): Promise<void> {
  await inNetns(netns, 'nft', ['-f', '-'], addGuardScript(g));
}

export async function removeTapGuard(netns: string, tap: string): Promise<void> {
  await inNetns(netns, 'nft', ['-f', '-'], removeGuardScript(tap));
}
