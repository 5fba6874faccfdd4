import { readFile, writeFile } from 'node:fs/promises';
import { run } from '../util/exec.js';

/**
 * The host's side of outbound NAT (`uigniter daemon --egress`). Inside the namespace the
 * VM firewall (`firewall.ts`) lets guests send beyond the host and masquerades them as the
 * namespace's veth address; here, in the host's namespace, one nftables table the daemon
 * owns (`inet uigniter-egress-<netns>`, so daemons with different namespaces never share
 * one) masquerades the veth /30 towards the host's other interfaces, and the host must
 * forward (net.ipv4.ip_forward=1).
 *
 * The table also keeps what forwarding opens shut:
 * - nothing from the VM network addressed to the host itself (any local, broadcast,
 *   anycast or multicast address but the daemon's veth address, which the namespace
 *   already limits to DNS and the allowed ports) gets through: dropped in prerouting, after
 *   conntrack (so answers to connections the host opened still arrive, whatever its source
 *   address) and before any DNAT of the host's (e.g. Docker's published ports) could turn it
 *   into a forward;
 * - nothing new is forwarded into the VM network (the host becoming a router must not let
 *   its LAN reach the guests), nor from it into another daemon's VM network (host veths
 *   are tagged with the interface group VETH_GROUP);
 * - only the namespace's masqueraded address is forwarded.
 *
 * What ip_forward (and net.ipv4.conf.all.accept_redirects, which the kernel flips with it)
 * were before is written in the table's comment, so the record lives exactly as long as
 * the table: a daemon that crashed leaves both, and the next start or
 * `uigniter daemon --cleanup` puts the values back. When several daemons use egress at
 * once, each table carries the value from before the first of them, and only the last one
 * to go restores it. The values are restored only if forwarding is still on (someone who
 * turned it off in between is not overruled).
 */

export const EGRESS_TABLE_PREFIX = 'uigniter-egress-';

/** Interface group of every daemon's host veth ("ui"), so egress can avoid them all. */
export const VETH_GROUP = 0x7569;

const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';
const ACCEPT_REDIRECTS = '/proc/sys/net/ipv4/conf/all/accept_redirects';

export function egressTableName(netns: string): string {
  return `${EGRESS_TABLE_PREFIX}${netns}`;
}

/** The host's forwarding settings before egress turned forwarding on. */
export interface SavedForwarding {
  ipForward: string;
  acceptRedirects: string;
}

export function formatSaved(s: SavedForwarding): string {
  return `uigniter egress; before: ip_forward=${s.ipForward} all.accept_redirects=${s.acceptRedirects}`;
}

export function parseSaved(comment: string): SavedForwarding | null {
  const m = /ip_forward=(\d+) all\.accept_redirects=(\d+)/.exec(comment);
  return m ? { ipForward: m[1]!, acceptRedirects: m[2]! } : null;
}

export interface HostEgressConfig {
  table: string;
  /** The host end of the veth pair. */
  hostVeth: string;
  /** The host's address on it (DNS, allowed ports), the one local address guests may reach. */
  hostAddress: string;
  /** The veth /30: the only source forwarded (the namespace masquerades its guests). */
  linkNet: string;
  saved: SavedForwarding;
}

/** The host-side table, as one atomic nft script (replaces an older copy of itself). */
export function hostEgressRules(c: HostEgressConfig): string {
  const v = `"${c.hostVeth}"`;
  return `table inet ${c.table}
delete table inet ${c.table}
table inet ${c.table} {
  comment "${formatSaved(c.saved)}"
  chain prerouting {
    type filter hook prerouting priority mangle; policy accept;
    iifname ${v} ct direction reply accept
    iifname ${v} ip daddr != ${c.hostAddress} fib daddr type { local, broadcast, anycast, multicast } drop
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    oifname ${v} ct state established,related accept
    oifname ${v} drop
    iifname ${v} oifgroup ${VETH_GROUP} drop
    iifname ${v} ip saddr != ${c.linkNet} drop
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    iifname ${v} ip saddr ${c.linkNet} oifname != ${v} masquerade
  }
}
`;
}

async function nft(args: string[], input?: string): Promise<string> {
  return (await run('nft', args, input === undefined ? {} : { input })).stdout;
}

async function readSysctl(path: string): Promise<string> {
  return (await readFile(path, 'utf8')).trim();
}

/** The egress tables of every daemon on this host. */
export async function listEgressTables(): Promise<string[]> {
  const out = await nft(['-j', 'list', 'tables', 'inet']);
  const items = (JSON.parse(out) as { nftables?: { table?: { name: string } }[] }).nftables ?? [];
  return items.flatMap((i) => (i.table?.name.startsWith(EGRESS_TABLE_PREFIX) ? [i.table.name] : []));
}

/** The record in a table's comment (nft's JSON output leaves comments out: read the text). */
async function savedIn(table: string): Promise<SavedForwarding | null> {
  const out = await nft(['list', 'table', 'inet', table]).catch(() => '');
  const m = /^\s*comment "([^"]*)"/m.exec(out);
  return m ? parseSaved(m[1]!) : null;
}

export interface EgressLink {
  netns: string;
  hostVeth: string;
  hostAddress: string;
  linkNet: string;
}

/** Creates (or replaces) the host-side table, then turns forwarding on. */
export async function enableHostEgress(l: EgressLink, log: (m: string) => void): Promise<void> {
  const table = egressTableName(l.netns);
  const tables = await listEgressTables();
  let saved: SavedForwarding | null = null;
  // Ours first (left by a crash), then another daemon's: both hold the value from before
  // forwarding was turned on; only when no table exists is the current value the original.
  for (const t of [table, ...tables.filter((t) => t !== table)]) {
    if (tables.includes(t)) saved ??= await savedIn(t);
  }
  saved ??= { ipForward: await readSysctl(IP_FORWARD), acceptRedirects: await readSysctl(ACCEPT_REDIRECTS) };
  await nft(['-f', '-'], hostEgressRules({ table, hostVeth: l.hostVeth, hostAddress: l.hostAddress, linkNet: l.linkNet, saved }));
  try {
    if ((await readSysctl(IP_FORWARD)) !== '1') {
      await writeFile(IP_FORWARD, '1');
      log(`egress: turned on net.ipv4.ip_forward (was ${saved.ipForward}); it is restored when the daemon stops`);
    }
  } catch (e) {
    await nft(['delete', 'table', 'inet', table]).catch(() => undefined);
    throw e;
  }
}

/**
 * Deletes the host-side table if there is one and, when it was the last egress table,
 * restores forwarding as it was before. Safe to call when egress was never on.
 * Returns whether there was a table.
 */
export async function disableHostEgress(netns: string, log: (m: string) => void): Promise<boolean> {
  const table = egressTableName(netns);
  const tables = await listEgressTables();
  if (!tables.includes(table)) return false;
  const saved = await savedIn(table);
  await nft(['delete', 'table', 'inet', table]);
  if (!saved) {
    log(`egress: table ${table} had no record of ip_forward; left as it is`);
    return true;
  }
  const others = tables.filter((t) => t !== table);
  if (others.length > 0) {
    log(`egress: net.ipv4.ip_forward stays on for ${others.join(', ')}`);
    return true;
  }
  if (saved.ipForward !== '1' && (await readSysctl(IP_FORWARD)) === '1') {
    await writeFile(IP_FORWARD, saved.ipForward);
    // Writing ip_forward resets all.accept_redirects: put back what it was.
    if ((await readSysctl(ACCEPT_REDIRECTS)) !== saved.acceptRedirects) await writeFile(ACCEPT_REDIRECTS, saved.acceptRedirects);
    log(`egress: restored net.ipv4.ip_forward=${saved.ipForward}`);
  }
  return true;
}
