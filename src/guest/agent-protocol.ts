import { isIPv4 } from 'node:net';
import { decodeToken, encodeToken } from './config-drive.js';

/**
 * The guest agent protocol: how the host drives a running guest's init (guest/init/init.c)
 * around snapshots and clones.
 *
 * The channel is a virtio-serial port named `org.uigniter.agent` (a unix socket
 * `<runDir>/agent.sock` on the host, /dev/vportNpM in the guest). The host connects only
 * while it needs the agent and closes after. The host sends commands; the guest answers
 * every command with exactly one line, in order. Lines are tokens separated by one space
 * and end with `\n`; every token is percent-encoded as on the config drive (each byte
 * outside [A-Za-z0-9._~/:=@+,-] becomes %XX, see config-drive.ts), so a token never holds a
 * space or a newline. A line is at most MAX_LINE bytes with its newline; the guest answers
 * a longer one with `err` and drops it.
 *
 *   ping                      -> ok pong
 *   freeze                    -> ok frozen <1|0>
 *   thaw                      -> ok thawed
 *   renew <ip> <prefix> <gateway> <mac> <hostname> <unix-time-ms> <entropy-hex> [keep-connections]
 *                             -> ok renewed
 *   clock <unix-time-ms>      -> ok clock
 *   anything else             -> err <message>      (the message is one encoded token)
 *
 * freeze: quiesce the app before a snapshot. When the app runs with our Node hooks
 *   (guest/runtime/node-clone-hooks.cjs), the init sends it SIGURG (SIGWINCH to hooks built
 *   before they announced "U" at load) and waits up to 1 s for the hooks' acknowledgement
 *   (the app's main thread then sits in a synchronous read and runs no JavaScript); then it stops the app's process group (SIGSTOP) and syncs the
 *   disks. `1` says the hooks acknowledged. A freeze while frozen answers the same again.
 * thaw: the VM goes on as the same machine (after a snapshot of a running VM, or a pause):
 *   the hooks are told "go on" and the group gets SIGCONT. A thaw while not frozen is ok.
 * clock: sets the wall clock (a paused VM's clock stood still while it was paused).
 * renew: the VM is a restored clone (or a suspended VM resumed) and must become a distinct
 *   machine before app code runs again. In this order: the entropy bytes (32-256, in hex)
 *   are mixed into the kernel's pool and credited, and the kernel's CRNG is reseeded; the
 *   wall clock is set; the hostname is set and /etc/hostname and /etc/hosts rewritten; eth0
 *   is taken down (dropping its neighbours and routes), given the MAC, the address and
 *   netmask, brought up, and the default route via the gateway added (left up when it has
 *   them already); every TCP connection but listeners and loopback is aborted (the
 *   snapshot's machine's), but with `keep-connections` (the same machine going on: a pool's
 *   spare handed out, a suspended VM resumed) only those from another address. Then a
 *   frozen app is
 *   told to renew (the hooks reseed what they cover) and continued. A renew while not
 *   frozen renews the machine all the same. A renew whose step fails answers `err` and
 *   leaves a frozen app frozen: a clone that did not become distinct must not run the app.
 *
 * The guest answers `err` to unknown commands and bad arguments and never exits (it is
 * PID 1). Lines of other kinds from the guest (none today) are a protocol error.
 */

/** The virtio-serial port's name: the guest finds it under /sys/class/virtio-ports/<port>/name. */
export const AGENT_PORT_NAME = 'org.uigniter.agent';
/** The longest line either side sends, newline included. */
export const MAX_LINE = 4096;
export const ENTROPY_MIN_BYTES = 32;
export const ENTROPY_MAX_BYTES = 256;

/** Who a restored clone becomes. */
export interface GuestIdentity {
  ip: string;
  prefix: number;
  gateway: string;
  /** aa:bb:cc:dd:ee:ff */
  mac: string;
  hostname: string;
  /** Wall-clock time to set, in milliseconds since the epoch. */
  timeMs: number;
  /** Fresh randomness for the guest kernel, ENTROPY_MIN_BYTES..ENTROPY_MAX_BYTES bytes. */
  entropy: Buffer;
  /**
   * The same machine going on (a pool's spare handed out, a suspended VM resumed): its TCP
   * connections from this address are its own and stay; those from another address are
   * aborted. Otherwise (a clone) every connection but loopback and listeners is aborted:
   * it belongs to the snapshot's machine.
   */
  keepConnections?: boolean;
}

export type AgentCommand =
  | { kind: 'ping' }
  | { kind: 'freeze' }
  | { kind: 'thaw' }
  | { kind: 'clock'; timeMs: number }
  | { kind: 'renew'; identity: GuestIdentity };

export type AgentReply = { kind: 'ok'; words: string[] } | { kind: 'err'; message: string };

const HOSTNAME = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$/;
const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i;
const TOKEN = /^(?:[A-Za-z0-9._~/:=@+,-]|%[0-9A-Fa-f]{2})+$/;

/** Checks an identity the way the guest will, so a bad one fails on the host with a clear message. */
export function checkIdentity(id: GuestIdentity): void {
  const bad = (what: string, value: unknown): never => {
    throw new Error(`guest identity: bad ${what}: ${JSON.stringify(value)}`);
  };
  if (!isIPv4(id.ip)) bad('ip', id.ip);
  if (!Number.isInteger(id.prefix) || id.prefix < 1 || id.prefix > 32) bad('prefix', id.prefix);
  if (!isIPv4(id.gateway)) bad('gateway', id.gateway);
  if (!MAC.test(id.mac)) bad('mac', id.mac);
  // Unicast: the low bit of the first octet set would make a multicast MAC, which no NIC takes.
  if (parseInt(id.mac.slice(0, 2), 16) & 1) bad('mac (multicast)', id.mac);
  if (!HOSTNAME.test(id.hostname)) bad('hostname', id.hostname);
  if (!Number.isSafeInteger(id.timeMs) || id.timeMs <= 0) bad('timeMs', id.timeMs);
  if (!Buffer.isBuffer(id.entropy) || id.entropy.length < ENTROPY_MIN_BYTES || id.entropy.length > ENTROPY_MAX_BYTES) {
    bad(`entropy (${ENTROPY_MIN_BYTES}-${ENTROPY_MAX_BYTES} bytes)`, Buffer.isBuffer(id.entropy) ? `${id.entropy.length} bytes` : typeof id.entropy);
  }
}

/** One command line, newline included. Throws on an identity the guest would refuse. */
export function formatCommand(cmd: AgentCommand): string {
  const line = (...tokens: (string | number)[]): string => `${tokens.map((t) => encodeToken(String(t))).join(' ')}\n`;
  switch (cmd.kind) {
    case 'ping':
    case 'freeze':
    case 'thaw':
      return line(cmd.kind);
    case 'clock':
      if (!Number.isSafeInteger(cmd.timeMs) || cmd.timeMs <= 0) throw new Error(`guest clock: bad timeMs: ${cmd.timeMs}`);
      return line('clock', cmd.timeMs);
    case 'renew': {
      const id = cmd.identity;
      checkIdentity(id);
      return line('renew', id.ip, id.prefix, id.gateway, id.mac.toLowerCase(), id.hostname, id.timeMs, id.entropy.toString('hex'), ...(id.keepConnections ? ['keep-connections'] : []));
    }
  }
}

/** Parses one reply line (without its newline). Throws on a line that is neither `ok` nor `err`. */
export function parseReply(line: string): AgentReply {
  const raw = line.endsWith('\n') ? line.slice(0, -1) : line;
  const tokens = raw.split(' ');
  if (tokens.some((t) => !TOKEN.test(t))) throw new Error(`guest agent: malformed reply ${JSON.stringify(raw.slice(0, 200))}`);
  const [head, ...rest] = tokens.map(decodeToken);
  if (head === 'ok') return { kind: 'ok', words: rest };
  if (head === 'err') return { kind: 'err', message: rest.join(' ') || 'unspecified error' };
  throw new Error(`guest agent: malformed reply ${JSON.stringify(raw.slice(0, 200))}`);
}
