/**
 * bench/clone-network: two ways for a clone of a template to get a network identity of its
 * own, measured in one run, interleaved (round i runs a then b when i is even, b then a when
 * it is odd: each path comes first half the time).
 *
 *   (a) renew (built)   POST /vm/run {image, boot:'template', name}: the daemon restores the
 *                       template on a new tap of its bridge, the guest agent gives eth0 the
 *                       clone's own MAC and address with the link cut, then the link comes up.
 *                       Time: just before the POST -> first reply of GET http://<clone ip>:8080/.
 *   (b) namespace (prototype, no daemon code): the template is restored unchanged (its IP and
 *                       MAC) into a namespace `ucn-<pid>-<n>` of its own: a tap there, a veth
 *                       pair from it into the daemon's bridge, nftables DNAT/SNAT between a
 *                       unique address U of the daemon's subnet and the template's IP.
 *                       Time: start of the namespace setup -> first reply of GET http://U:8080/.
 *
 * (b) in detail. The template's guest believes it is T/22 (the template source's address)
 * with gateway G (the daemon's bridge address), all inside the daemon's subnet. So in the
 * clone's namespace only T itself is routed to the tap (T/32); the rest of the subnet and
 * the default route (via G) go out of the veth, whose namespace end holds U/32 and answers
 * ARP for U on the bridge. The tap has no address and proxy_arp on (proxy_delay 0, else the
 * kernel delays proxied ARP replies by up to 0.8 s), so it answers the guest's ARP for G and
 * for peers it thinks are on-link; its MAC is the bridge's (what the template's neighbour
 * table held). DNAT U->T for what comes in on the veth, SNAT T->U for what the guest opens.
 * Each (b) clone has its own U (172.25.3.250, .249, ...; the veth's MAC derived from it): the
 * peer's Node keeps idle connections to an address for 5 s, so reusing U at once would hand
 * the next clone a dead connection. (a)'s clone usually gets the address and MAC the
 * previous (a) clone had (the lowest free lease), so the peer may still hold a neighbour
 * entry for it; (b)'s first request always resolves U by ARP. T must never be leased to another VM
 * (inside a clone's namespace T is the clone itself), so the template's source VM is
 * stopped, not deleted: its lease keeps T.
 * QEMU: the exact command line of a daemon-restored clone, read from /proc/<pid>/cmdline of
 * a probe clone of (a), with its per-VM paths, -name, tap name, MAC (-> the template's) and
 * the kernel line's ip= (cosmetic after a restore) rewritten; run with nsenter in the clone's
 * namespace; then QMP: migrate-set-capabilities x-ignore-shared + events, announce-rounds 0,
 * migrate-incoming exec:cat <template>/state, wait for completion, cont. Then the guest
 * agent's `renew` with the SAME ip/MAC and a fresh hostname, clock and entropy: needed
 * anyway, since the template's app was frozen by the snapshot and renew continues it, and it
 * keeps parity with (a). Unlike (a), (b) does not cut the link around the renew (the
 * namespace isolates the clone: two QMP set_link calls fewer).
 *
 * VM-to-VM: a long-lived third VM (`peer`, booted cold) fetches the clone through its
 * /fetch?url= endpoint, timed from the host (GET http://<peer>:8080/fetch?url=...): (a) by
 * name (http://<clone name>:8080/, resolved by the daemon's DNS), (b) by address
 * (http://U:8080/: the daemon's DNS does not know (b) clones; in a real implementation that
 * is one more name -> U record). Each is fetched twice: first contact (a new connection),
 * then again at once (the peer's Node reuses the kept-alive connection: no lookup, no
 * handshake). Baseline, once per round, each first request at least 5.5 s after the
 * previous one (so on a new connection): the peer fetching itself by IP, by its own name
 * (adds the DNS lookup), and by IP again (reused connection).
 * Every fetched body is checked to come from the expected clone (its hostname).
 *
 * Polling: the app's port is polled every 5 ms from the moment the address is known ((a):
 * once GET /vm/<name> shows the lease; (b): once the namespace is set up), each attempt
 * giving up its connection after 200 ms, as bench/restore does. Every wait is bounded
 * (60 s per measurement, 10 s per request). Everything made is removed after each sample
 * and again, whatever happened, at the end (also on SIGINT/SIGTERM); the end checks and
 * prints that no namespace, link, route, nftables table, process or file is left.
 *
 * Beside the times, per sample and untimed: the daemon bridge's MAC and whether the daemon's
 * namespace still had a neighbour entry for (a)'s re-leased address, and how long after
 * "ready" (POST answered / renew answered) the first reply came: what explains a slow one.
 * B_CUT_LINK=1 makes (b) cut and reconnect its link around the renew as (a) does.
 *
 *   node dist/bench/clone-network.js        (root; RUNS=20 by default, at least 10)
 *   B_CUT_LINK=1 node dist/bench/clone-network.js
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { access, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SnapshotView, VmView } from '../src/client/client.js';
import { setMigration, shellQuote, waitForMigration, waitRunStateLeaves } from '../src/drivers/qemu/migration.js';
import { QmpClient } from '../src/drivers/qemu/qmp-client.js';
import { GuestAgent } from '../src/guest/guest-agent.js';
import { run } from '../src/util/exec.js';
import { connectUnix, firstReply, getOnce, median, printTable, ROOT, spreadRow, startBenchDaemon, type BenchDaemon } from './lib.js';

const RUNS = Number(process.env.RUNS ?? 20);
const IMAGE = 'counter';
const APP_PORT = 8080;
const POLL_MS = 5;
const MEASURE_TIMEOUT_MS = 60_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** Pause after each removal: a QEMU that just ended still frees its memory for a moment. */
const SETTLE_MS = 300;
/**
 * The bench daemon's network. startBenchDaemon gives every bench daemon 172.27.0.0/22 and
 * the same link /30, and a second bench daemon started meanwhile (bench/restore by someone
 * else, say) takes the host route over: this bench's VMs would then be out of reach. So this
 * one passes its own subnet and link in startBenchDaemon's extraArgs (the CLI keeps an
 * option's last value), one no other bench or test uses, and checks the bridge got it.
 */
const BENCH_SUBNET = '172.25.0.0/22';
const BENCH_LINK_NET = '172.25.255.252/30';
/**
 * (b)'s unique addresses: high in the daemon's /22, far from what its leases hand out (from
 * the bottom up): 172.25.3.250 for the first (b) clone, one lower for each next one.
 */
const UNIQUE_TOP = 250;
const uniqueAddress = (k: number): string => `172.25.3.${UNIQUE_TOP - k}`;
/** The veth's MAC, derived from its address (locally administered, unicast). */
const macFor = (ip: string): string => `02:75:63:${ip.split('.').slice(1).map((o) => Number(o).toString(16).padStart(2, '0')).join(':')}`;
/**
 * The peer's Node (the fixture's /fetch uses http.get's global agent) keeps idle
 * connections for 5 s (Node >= 19: keepAlive, timeout 5000) and the fixture's server too:
 * a first request within 5 s of the last one to the same host:port reuses the connection.
 * The baselines wait this long since their previous request, so each first one opens a
 * new connection, as the first request to a new clone does.
 */
const KEEPALIVE_MS = 5000;
const TAG = `ucn-${process.pid}`;
/** Names inside a clone's namespace (each namespace has its own). */
const TAP = 'tap0';
const VETH = 'veth0';
const STEP_TIMEOUT_MS = 10_000;
/**
 * B_CUT_LINK=1: (b) cuts the NIC's link after the load and connects it after the renew, as
 * the daemon does for (a) (QMP set_link n0 off / on). Off by default: in its own namespace a
 * clone cannot be mistaken for its template, so (b) needs no cut. Isolates what the cut costs.
 */
const B_CUT_LINK = process.env.B_CUT_LINK === '1';
/** Ready -> first reply took a few hundred ms when nothing stalled; a stall adds about a second. */
const STALL_MS = 700;

type PathName = 'a' | 'b';

interface DaemonNet {
  netns: string;
  bridge: string;
  gateway: string;
  prefix: number;
  subnet: string;
  bridgeMac: string;
}

interface Template {
  view: SnapshotView;
  dir: string;
  /** The guest identity frozen in the template: its source VM's. */
  ip: string;
  mac: string;
  source: string;
}

/** What a (b) clone is made of, for its removal. */
interface SlotB {
  n: number;
  ns: string;
  /** Its unique address U (DNAT U -> T). */
  u: string;
  /** The veth's end in the daemon's namespace. */
  peer: string;
  dir: string;
  child: ChildProcess | null;
  exited: Promise<unknown> | null;
  qmp: QmpClient | null;
}

interface Sample {
  replyMs: number;
  firstFetchMs: number;
  againFetchMs: number;
  /** (a): the POST's answer (the daemon says ready); (b): the agent's answer to renew. From the start. */
  readyMs: number;
  /** (b): namespace setup alone; (a): NaN. */
  setupMs: number;
  /** The daemon bridge's MAC when the sample began. */
  bridgeMac: string;
  /** (a): the daemon's namespace had a neighbour entry for the clone's address before the POST. */
  neighbourKnown: boolean;
}

const live = { a: new Set<string>(), b: new Map<string, SlotB>() };
/** Aborted by SIGINT/SIGTERM: the run stops at its next step and removes what it made. */
const stop = new AbortController();
function checkStop(): void {
  if (stop.signal.aborted) throw new Error(`stopped (${String(stop.signal.reason)})`);
}
const log = (m: string): void => void process.stderr.write(`${m}\n`);
const ms1 = (x: number): string => x.toFixed(1);

function sh(cmd: string, args: string[], input?: string): Promise<string> {
  return run(cmd, args, { timeoutMs: STEP_TIMEOUT_MS, ...(input === undefined ? {} : { input }) }).then((r) => r.stdout);
}

function ipJson<T>(args: string[]): Promise<T> {
  return sh('ip', ['-j', ...args]).then((o) => (o.trim() ? (JSON.parse(o) as T) : ([] as T)));
}

async function netnsList(): Promise<string[]> {
  return (await sh('ip', ['netns', 'list']).catch(() => '')).split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
}

async function linkNames(netns: string | null): Promise<string[]> {
  const links = await ipJson<{ ifname: string }[]>([...(netns ? ['-n', netns] : []), 'link', 'show']).catch(() => []);
  return links.map((l) => l.ifname);
}

/** pids whose command line contains `needle` (not this process). */
async function pidsWith(needle: string): Promise<number[]> {
  const out: number[] = [];
  for (const e of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    const cmd = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(needle)) out.push(Number(e));
  }
  return out;
}

async function qemuCount(): Promise<number> {
  return (await pidsWith('qemu-system-')).length;
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

// ---------------------------------------------------------------- setup

/** First and last address of an IPv4 CIDR (or of one address), as numbers. */
function cidrRange(cidr: string): [number, number] {
  const [addr, len] = cidr.includes('/') ? cidr.split('/') : [cidr, '32'];
  const ip = addr!.split('.').reduce((a, o) => ((a << 8) | Number(o)) >>> 0, 0);
  const size = 2 ** (32 - Number(len));
  const base = ip - (ip % size);
  return [base, base + size - 1];
}

/** Routes of the host that overlap `cidr` (the default route aside). */
async function overlappingRoutes(cidr: string): Promise<string[]> {
  const [lo, hi] = cidrRange(cidr);
  const routes = await ipJson<{ dst: string; dev?: string }[]>(['route', 'show']);
  return routes
    .filter((r) => r.dst !== 'default')
    .filter((r) => {
      const [a, b] = cidrRange(r.dst);
      return a <= hi && lo <= b;
    })
    .map((r) => `${r.dst} dev ${r.dev ?? '?'}`);
}

/** Refuses to start where something else already uses this bench's addresses. */
async function preflight(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (namespaces, taps, nftables)');
  for (const cidr of [BENCH_SUBNET, BENCH_LINK_NET]) {
    const taken = await overlappingRoutes(cidr);
    if (taken.length > 0) throw new Error(`${cidr} is in use on this host (${taken.join(', ')}): is another clone-network bench running?`);
  }
}

async function daemonNet(d: BenchDaemon): Promise<DaemonNet> {
  const [br] = await ipJson<{ address: string; addr_info: { family: string; local: string; prefixlen: number }[] }[]>(['-n', d.netns, 'addr', 'show', 'dev', d.bridge]);
  const a = br?.addr_info.find((x) => x.family === 'inet');
  if (!br || !a) throw new Error(`bridge ${d.bridge} in ${d.netns} has no IPv4 address`);
  const [o1, o2, o3, o4] = a.local.split('.').map(Number) as [number, number, number, number];
  const ip = ((o1 << 24) | (o2 << 16) | (o3 << 8) | o4) >>> 0;
  const net = (ip & ((0xffffffff << (32 - a.prefixlen)) >>> 0)) >>> 0;
  const subnet = `${[24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.')}/${a.prefixlen}`;
  if (subnet !== BENCH_SUBNET) throw new Error(`the bench daemon's bridge is on ${subnet}, not ${BENCH_SUBNET}: did startBenchDaemon's extraArgs stop overriding --subnet?`);
  const mine = await overlappingRoutes(BENCH_SUBNET);
  if (mine.length !== 1 || !mine[0]!.endsWith(`dev ${d.bridge}-h`)) throw new Error(`the host's route to ${BENCH_SUBNET} is not through this daemon's veth: ${mine.join(', ')}`);
  return { netns: d.netns, bridge: d.bridge, gateway: a.local, prefix: a.prefixlen, subnet, bridgeMac: br.address };
}

async function templateOf(d: BenchDaemon): Promise<SnapshotView | undefined> {
  return (await d.client.templates()).find((t) => t.image === IMAGE || t.image.startsWith(`${IMAGE}:`));
}

/**
 * The template: one boot:'auto' VM, GET /templates polled until it lists it (bounded); the
 * source VM is then stopped, not deleted, so that its lease keeps the template's address.
 */
async function makeTemplate(d: BenchDaemon): Promise<Template> {
  const source = 'tpl-source';
  const t0 = performance.now();
  const vm = await d.client.run({ image: IMAGE, boot: 'auto', name: source });
  live.a.add(source);
  const ready = performance.now();
  let view: SnapshotView | undefined;
  for (let i = 0; i < 1200 && !view; i++) {
    view = await templateOf(d);
    if (!view) await sleep(100);
  }
  if (!view) throw new Error('no template was listed within 120 s of the boot:auto VM being ready');
  log(`template ${view.name}: source VM ready in ${((ready - t0) / 1000).toFixed(2)} s, listed ${((performance.now() - ready) / 1000).toFixed(2)} s after`);
  if (view.memory !== 'file') throw new Error(`template ${view.name} has memory '${view.memory}'; (b) restores a 'file' template`);
  await d.client.stop(source, 10);
  const dir = join(d.home, 'snapshots', view.name);
  for (const f of ['state', 'memory', 'config.img']) {
    if (!(await exists(join(dir, f)))) throw new Error(`template ${view.name} has no ${f} in ${dir}`);
  }
  if (!vm.ip || !vm.mac) throw new Error(`the template's source VM has no address`);
  return { view, dir, ip: vm.ip, mac: vm.mac, source };
}

// ---------------------------------------------------------------- (a)

/** The VM's address from GET /vm/<name>, polled while its POST is in flight. */
async function ipOf(d: BenchDaemon, name: string, deadline: number, posted: { done: boolean }): Promise<string> {
  while (performance.now() < deadline && !posted.done) {
    const res = await fetch(`${d.url}/vm/${name}`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    if (res.ok) {
      const vm = (await res.json()) as VmView;
      if (vm.ip) return vm.ip;
    } else {
      await res.body?.cancel();
    }
    await sleep(POLL_MS);
  }
  const vm = await d.client.get(name);
  if (!vm.ip) throw new Error(`VM ${name} has no address`);
  return vm.ip;
}

/** POST /vm/run {boot:'template'} timed to the first reply; the VM is left running (the caller removes it). */
async function restoreA(d: BenchDaemon, name: string): Promise<{ replyMs: number; answerMs: number; vm: VmView }> {
  const body = JSON.stringify({ image: IMAGE, boot: 'template', name });
  const posted = { done: false };
  live.a.add(name);
  const t0 = performance.now();
  const deadline = t0 + MEASURE_TIMEOUT_MS;
  const post = fetch(`${d.url}/vm/run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(MEASURE_TIMEOUT_MS) }).then(
    async (res) => {
      const answerMs = performance.now() - t0;
      posted.done = true;
      const text = await res.text();
      if (res.status !== 201) throw new Error(`POST /vm/run {boot:'template'} answered ${res.status}: ${text}`);
      return { answerMs, vm: JSON.parse(text) as VmView };
    },
    (e: unknown) => {
      posted.done = true;
      throw e;
    },
  );
  const failed = new AbortController();
  post.catch((e: unknown) => failed.abort(e));
  try {
    const ip = await ipOf(d, name, deadline, posted);
    const tReply = await firstReply(`http://${ip}:${APP_PORT}/`, deadline, { everyMs: POLL_MS, signal: AbortSignal.any([failed.signal, stop.signal]) });
    const answered = await post;
    if (answered.vm.origin !== 'template') throw new Error(`VM ${name} came up as '${answered.vm.origin}', not from the template`);
    return { replyMs: tReply - t0, ...answered };
  } catch (e) {
    await post;
    throw e;
  }
}

async function removeA(d: BenchDaemon, name: string): Promise<void> {
  await d.client.remove(name, { force: true }).catch((e: unknown) => {
    if (!/not.found|404/i.test(String(e))) throw e;
  });
  live.a.delete(name);
}

// ---------------------------------------------------------------- (b)

/** How a daemon-restored clone's QEMU command line becomes a (b) clone's. */
interface ArgvRewrite {
  runDir: string;
  vmId: string;
  tap: string;
  mac: string;
  ip: string;
  hostname: string;
}

/** The probe clone's argv with its per-VM parts replaced; throws if any of them is left. */
function rewriteArgv(argv: string[], from: ArgvRewrite, to: ArgvRewrite): string[] {
  const out = argv.map((a, i) => {
    const prev = argv[i - 1];
    let v = a.split(from.runDir).join(to.runDir);
    if (prev === '-name') v = `${to.vmId},process=${to.vmId}`;
    if (prev === '-netdev') v = v.replace(`ifname=${from.tap},`, `ifname=${to.tap},`);
    if (prev === '-device' && v.startsWith('virtio-net-device')) v = v.replace(`mac=${from.mac}`, `mac=${to.mac}`);
    if (prev === '-append') v = v.replace(`ip=${from.ip}::`, `ip=${to.ip}::`).replace(`:${from.hostname}:eth0:`, `:${to.hostname}:eth0:`);
    return v;
  });
  const joined = out.join('\0');
  for (const [what, s] of [
    ['run directory', from.runDir],
    ['VM id', from.vmId],
    ['tap', `ifname=${from.tap},`],
    ['MAC', from.mac],
    ['address', `ip=${from.ip}:`],
  ] as const) {
    if (joined.includes(s)) throw new Error(`the clone's command line still names its ${what} (${s}) after the rewrite`);
  }
  if (!/\0-incoming\0defer(\0|$)/.test(joined)) throw new Error("the probe clone's command line has no '-incoming defer'");
  return out;
}

function nftRules(t: Template, u: string): string {
  return `table ip ucn {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "${VETH}" ip daddr ${u} dnat to ${t.ip}
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "${VETH}" ip saddr ${t.ip} snat to ${u}
  }
}
`;
}

/** The clone's namespace: tap, veth into the daemon's bridge, routes, proxy ARP, NAT. */
async function setupNamespace(slot: SlotB, net: DaemonNet, t: Template): Promise<void> {
  await sh('ip', ['netns', 'add', slot.ns]);
  await sh('ip', ['-n', slot.ns, '-batch', '-'], [
    'link set dev lo up',
    `tuntap add dev ${TAP} mode tap`,
    `link set dev ${TAP} address ${net.bridgeMac} up`,
    `link add ${VETH} address ${macFor(slot.u)} type veth peer name ${slot.peer} netns ${net.netns}`,
    `addr add ${slot.u}/32 dev ${VETH}`,
    `link set dev ${VETH} up`,
    `route add ${t.ip}/32 dev ${TAP}`,
    `route add ${net.subnet} dev ${VETH} src ${slot.u}`,
    `route add default via ${net.gateway} dev ${VETH}`,
    '',
  ].join('\n'));
  await sh('ip', ['-n', net.netns, '-batch', '-'], `link set dev ${slot.peer} master ${net.bridge}\nlink set dev ${slot.peer} up\n`);
  const sysctls = ['net.ipv4.ip_forward=1', `net.ipv4.conf.${TAP}.proxy_arp=1`, `net.ipv4.neigh.${TAP}.proxy_delay=0`];
  await sh('nsenter', [`--net=/run/netns/${slot.ns}`, '--', 'sh', '-c', `sysctl -q -w ${sysctls.join(' ')} && exec nft -f -`], nftRules(t, slot.u));
}

async function openAgent(path: string, deadline: number): Promise<Socket> {
  return connectUnix(path, deadline, 10).catch((e: unknown) => {
    throw new Error(`cannot open the agent channel ${path}: ${(e as Error).message}`);
  });
}

/** QEMU with the rewritten command line, in the namespace; the template loaded; resumed; renewed. */
async function restoreB(slot: SlotB, argv: string[], t: Template, net: DaemonNet): Promise<void> {
  const logPath = join(slot.dir, 'qemu.log');
  const fd = openSync(logPath, 'a');
  const child = spawn('nsenter', [`--net=/run/netns/${slot.ns}`, '--', ...argv], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  slot.child = child;
  slot.exited = new Promise((r) => child.once('exit', r));
  const why = async (): Promise<string> => (await readFile(logPath, 'utf8').catch(() => '')).trim().split('\n').slice(-3).join(' | ') || 'no message';
  const early = slot.exited.then(async () => {
    throw new Error(`qemu exited at start: ${await why()}`);
  });
  early.catch(() => undefined);
  const qmp = await Promise.race([QmpClient.connect(join(slot.dir, 'qmp.sock'), STEP_TIMEOUT_MS), early]);
  slot.qmp = qmp;
  await setMigration(qmp, true, true);
  await qmp.execute('migrate-incoming', { uri: `exec:cat ${shellQuote(join(t.dir, 'state'))}` });
  await waitForMigration(qmp, { gone: slot.exited, why, timeoutMs: MEASURE_TIMEOUT_MS, what: 'loading the template' });
  await waitRunStateLeaves(qmp, ['inmigrate', 'finish-migrate']);
  if (B_CUT_LINK) await qmp.execute('set_link', { name: 'n0', up: false });
  await qmp.execute('cont');
  const agent = new GuestAgent(await openAgent(join(slot.dir, 'agent.sock'), Date.now() + STEP_TIMEOUT_MS));
  try {
    await agent.renew({ ip: t.ip, prefix: net.prefix, gateway: net.gateway, mac: t.mac, hostname: slot.ns, timeMs: Date.now(), entropy: randomBytes(64) });
  } finally {
    agent.close();
  }
  if (B_CUT_LINK) await qmp.execute('set_link', { name: 'n0', up: true });
}

async function removeB(slot: SlotB): Promise<void> {
  slot.qmp?.close();
  if (slot.child && slot.child.exitCode === null && slot.child.signalCode === null) {
    slot.child.kill('SIGKILL');
    await Promise.race([slot.exited, sleep(5000)]);
  }
  if ((await netnsList()).includes(slot.ns)) await sh('ip', ['netns', 'del', slot.ns]);
  await rm(slot.dir, { recursive: true, force: true });
  live.b.delete(slot.ns);
}

// ---------------------------------------------------------------- VM-to-VM

/** The peer VM fetches `url`; the time from the host; checks the answer came from `hostname`. */
async function vmFetch(peerIp: string, url: string, hostname: string): Promise<number> {
  const t0 = performance.now();
  const body = await getOnce(`http://${peerIp}:${APP_PORT}/fetch?url=${encodeURIComponent(url)}`, 2000, REQUEST_TIMEOUT_MS);
  const ms = performance.now() - t0;
  const r = JSON.parse(body) as { status?: number; body?: string; error?: string };
  if (r.status !== 200) throw new Error(`the peer's fetch of ${url} failed: ${body.trim()}`);
  const got = (JSON.parse(r.body ?? '{}') as { hostname?: string }).hostname;
  if (got !== hostname) throw new Error(`the peer's fetch of ${url} reached '${got}', not '${hostname}'`);
  return ms;
}

// ---------------------------------------------------------------- the two paths, one sample each


interface Ctx {
  d: BenchDaemon;
  net: DaemonNet;
  t: Template;
  peer: VmView;
  work: string;
  /** The probe clone's argv and what to rewrite in it. */
  argv: string[];
  from: ArgvRewrite;
  n: number;
  /** (b) clones made so far (picks each one's unique address). */
  nb: number;
}

/**
 * The daemon bridge's MAC and the addresses its namespace has a usable neighbour entry for
 * (read before a sample, untimed). A Linux bridge whose MAC was never set takes the lowest
 * MAC of its ports, so it changes as taps come and go, and each change flushes the
 * namespace's neighbour table for the bridge.
 */
async function bridgeState(net: DaemonNet): Promise<{ mac: string; neighbours: Set<string> }> {
  const [link] = await ipJson<{ address: string }[]>(['-n', net.netns, 'link', 'show', 'dev', net.bridge]);
  const neigh = await ipJson<{ dst: string; lladdr?: string; state?: string[] }[]>(['-n', net.netns, 'neigh', 'show', 'dev', net.bridge]);
  const usable = neigh.filter((e) => e.lladdr && !(e.state ?? []).some((st) => st === 'FAILED' || st === 'INCOMPLETE'));
  return { mac: link?.address ?? '?', neighbours: new Set(usable.map((e) => e.dst)) };
}

async function sampleA(c: Ctx, count?: (vm: VmView) => Promise<void>): Promise<Sample> {
  checkStop();
  const name = `ca-${c.n++}`;
  try {
    const before = await bridgeState(c.net);
    const r = await restoreA(c.d, name);
    const url = `http://${name}:${APP_PORT}/`;
    const firstFetchMs = await vmFetch(c.peer.ip!, url, name);
    const againFetchMs = await vmFetch(c.peer.ip!, url, name);
    if (count) await count(r.vm);
    return { replyMs: r.replyMs, readyMs: r.answerMs, firstFetchMs, againFetchMs, setupMs: NaN, bridgeMac: before.mac, neighbourKnown: before.neighbours.has(r.vm.ip!) };
  } finally {
    await removeA(c.d, name);
  }
}

async function sampleB(c: Ctx, count?: (slot: SlotB) => Promise<void>): Promise<Sample> {
  checkStop();
  const n = c.n++;
  const slot: SlotB = { n, ns: `${TAG}-${n}`, u: uniqueAddress(c.nb++), peer: `uc${process.pid}b${n}`, dir: join(c.work, `b-${n}`), child: null, exited: null, qmp: null };
  if (slot.peer.length > 15) throw new Error(`interface name ${slot.peer} is too long`);
  const to: ArgvRewrite = { runDir: slot.dir, vmId: slot.ns, tap: TAP, mac: c.t.mac, ip: c.t.ip, hostname: slot.ns };
  const argv = rewriteArgv(c.argv, c.from, to);
  await mkdir(slot.dir, { recursive: true });
  live.b.set(slot.ns, slot);
  try {
    const before = await bridgeState(c.net);
    const t0 = performance.now();
    await setupNamespace(slot, c.net, c.t);
    const tSetup = performance.now();
    let tRenewed = NaN;
    const restored = restoreB(slot, argv, c.t, c.net).then(() => void (tRenewed = performance.now()));
    const failed = new AbortController();
    restored.catch((e: unknown) => failed.abort(e));
    let tReply: number;
    try {
      tReply = await firstReply(`http://${slot.u}:${APP_PORT}/`, t0 + MEASURE_TIMEOUT_MS, { everyMs: POLL_MS, signal: AbortSignal.any([failed.signal, stop.signal]) });
    } finally {
      await restored;
    }
    const url = `http://${slot.u}:${APP_PORT}/`;
    const firstFetchMs = await vmFetch(c.peer.ip!, url, slot.ns);
    const againFetchMs = await vmFetch(c.peer.ip!, url, slot.ns);
    if (count) await count(slot);
    return { replyMs: tReply - t0, setupMs: tSetup - t0, firstFetchMs, againFetchMs, readyMs: tRenewed - t0, bridgeMac: before.mac, neighbourKnown: false };
  } finally {
    await removeB(slot);
  }
}

// ---------------------------------------------------------------- end checks

/** The bench daemon's RAM directory (src/util/paths.ts: /dev/shm/uigniter-<sha256(home)[:12]>). */
function memDirOf(d: BenchDaemon): string {
  return join('/dev/shm', `uigniter-${createHash('sha256').update(d.home).digest('hex').slice(0, 12)}`);
}

/** Removes whatever is still tracked (idempotent), then the daemon and the work dir. */
let cleaning: Promise<void> | null = null;
function cleanupAll(d: BenchDaemon | null, work: string | null): Promise<void> {
  cleaning ??= (async () => {
    for (const slot of [...live.b.values()]) await removeB(slot).catch((e: unknown) => log(`cleanup: ${slot.ns}: ${String(e)}`));
    if (d) {
      for (const name of [...live.a]) await removeA(d, name).catch((e: unknown) => log(`cleanup: VM ${name}: ${String(e)}`));
      await d.close().catch((e: unknown) => log(`cleanup: daemon: ${String(e)}`));
      // The daemon's RAM directory: its --cleanup leaves it (empty).
      await rm(memDirOf(d), { recursive: true, force: true });
    }
    if (work) await rm(work, { recursive: true, force: true });
  })();
  return cleaning;
}

async function endChecks(d: BenchDaemon, work: string, nftBefore: string, rootLinksBefore: string[]): Promise<boolean> {
  const checks: [string, boolean, string][] = [];
  const ns = await netnsList();
  const leftNs = ns.filter((n) => n.startsWith(`${TAG}-`) || n === d.netns);
  checks.push([`network namespaces ${TAG}-* and ${d.netns}`, leftNs.length === 0, leftNs.join(' ') || 'none left']);
  // Other engineers may add links meanwhile: only names of ours count (the daemon's veth, (b)'s veths).
  const newLinks = (await linkNames(null)).filter((l) => !rootLinksBefore.includes(l));
  const ours = newLinks.filter((l) => l.startsWith(d.bridge) || l.startsWith(`uc${process.pid}`));
  checks.push([`links ${d.bridge}-* and uc${process.pid}* in the host namespace`, ours.length === 0, ours.join(' ') || `none (added since the start by others: ${newLinks.join(' ') || 'none'})`]);
  const routes = await overlappingRoutes(BENCH_SUBNET);
  checks.push([`host routes to ${BENCH_SUBNET}`, routes.length === 0, routes.join(', ') || 'gone']);
  const nftAfter = await sh('nft', ['list', 'tables']).catch((e: unknown) => `error: ${String(e)}`);
  const oursNft = nftAfter.split('\n').filter((l) => l.includes('ucn') || l.includes(d.netns));
  checks.push(['nftables tables in the host namespace', oursNft.length === 0, `${nftAfter === nftBefore ? 'same as before the run' : 'changed since the start (not by us)'}: ${nftAfter.trim().replace(/\n/g, '; ') || 'none'}`]);
  const procs = [...(await pidsWith(`${TAG}-`)), ...(await pidsWith(d.home))];
  checks.push([`processes naming ${TAG}- or the daemon's home`, procs.length === 0, procs.join(' ') || 'none']);
  const files = [work, d.home, memDirOf(d)].filter((p) => p);
  const leftFiles: string[] = [];
  for (const f of files) if (await exists(f)) leftFiles.push(f);
  checks.push(["work dir (the (b) clones' run dirs), daemon home, daemon RAM dir", leftFiles.length === 0, leftFiles.join(' ') || 'removed']);
  process.stdout.write('\ncleanup checked at the end:\n');
  for (const [what, ok, detail] of checks) process.stdout.write(`  ${ok ? 'ok  ' : 'LEFT'}  ${what}: ${detail}\n`);
  return checks.every((c) => c[1]);
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error('RUNS must be a positive integer');
  if (RUNS > 200) throw new Error('RUNS at most 200 ((b) takes one unique address per clone from 172.25.3.250 down)');
  if (RUNS < 10) log(`warning: RUNS=${RUNS}: the issue asks for at least 10 per path`);
  await preflight();
  const nftBefore = await sh('nft', ['list', 'tables']).catch((e: unknown) => `error: ${String(e)}`);
  const rootLinksBefore = await linkNames(null);
  const load0 = loadavg();
  const otherQemus0 = await qemuCount();
  let d: BenchDaemon | null = null;
  let work: string | null = null;
  // A first signal stops the run at its next step (every wait is bounded) and lets the
  // finally below remove everything and check; a second one removes what is tracked and exits.
  const onSignal = (sig: NodeJS.Signals): void => {
    if (!stop.signal.aborted) {
      log(`${sig}: stopping at the next step, then removing what the bench made (again to force)`);
      stop.abort(sig);
      return;
    }
    log(`${sig}: removing what the bench made now`);
    void cleanupAll(d, work).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let clean = false;
  try {
    d = await startBenchDaemon(['--subnet', BENCH_SUBNET, '--link-net', BENCH_LINK_NET]);
    work = await mkdtemp(join(tmpdir(), 'uigniter-bench-clone-net-'));
    const net = await daemonNet(d);
    await d.cli(['image', 'build', join(ROOT, 'test', 'fixtures', IMAGE), '--name', IMAGE]);
    const t = await makeTemplate(d);
    const peer = await d.client.run({ image: IMAGE, boot: 'cold', name: 'peer' });
    live.a.add('peer');
    if (!peer.ip) throw new Error('the peer VM has no address');
    const leased = new Set((await d.client.list()).map((v) => v.ip).filter(Boolean));
    const lowest = uniqueAddress(RUNS + 1);
    if ([...leased].some((ip) => Number(ip!.split('.')[2]) === 3 && Number(ip!.split('.')[3]) >= UNIQUE_TOP - RUNS - 1)) {
      throw new Error(`the daemon leased an address in ${lowest}-${uniqueAddress(0)}, (b)'s unique addresses`);
    }
    if (peer.ip === t.ip) throw new Error(`the peer VM got the template's address ${t.ip}`);

    // The probe clone of (a): its QEMU command line is what (b) runs.
    const probe = await d.client.run({ image: IMAGE, boot: 'template', name: 'probe' });
    live.a.add('probe');
    const raw = await readFile(`/proc/${probe.pid}/cmdline`, 'utf8');
    const argv = raw.replace(/\0$/, '').split('\0');
    const pidfile = argv[argv.indexOf('-pidfile') + 1]!;
    const netdev = argv[argv.indexOf('-netdev') + 1]!;
    const from: ArgvRewrite = {
      runDir: pidfile.slice(0, pidfile.lastIndexOf('/')),
      vmId: /^(uigniter-[^,]+),/.exec(argv[argv.indexOf('-name') + 1]!)![1]!,
      tap: /ifname=([^,]+)/.exec(netdev)![1]!,
      mac: probe.mac!,
      ip: probe.ip!,
      hostname: probe.name,
    };
    await removeA(d, 'probe');

    const c: Ctx = { d, net, t, peer, work, argv, from, n: 0, nb: 0 };
    const shown = rewriteArgv(argv, from, { runDir: '<dir>', vmId: `${TAG}-<n>`, tap: TAP, mac: t.mac, ip: t.ip, hostname: `${TAG}-<n>` });
    const changed = shown.flatMap((a, i) => (a !== argv[i] ? [`  ${argv[i - 1]} ${a}`] : []));

    // Warm-up, untimed: one of each (page cache of the template's files), counting what each clone adds.
    const resources: Record<PathName, string> = { a: '', b: '' };
    const daemonLinks0 = await linkNames(net.netns);
    await sampleA(c, async () => {
      const added = (await linkNames(net.netns)).filter((l) => !daemonLinks0.includes(l));
      resources.a = `${added.length} link(s) in the daemon's namespace (${added.join(', ')}: the tap, a port of ${net.bridge}); 0 namespaces, 0 NAT rules; + 1 DNS name, 1 lease`;
    });
    await sampleB(c, async (slot) => {
      const inside = (await linkNames(slot.ns)).filter((l) => l !== 'lo');
      const added = (await linkNames(net.netns)).filter((l) => !daemonLinks0.includes(l));
      const rules = await sh('nsenter', [`--net=/run/netns/${slot.ns}`, '--', 'nft', '-a', 'list', 'ruleset']);
      const nRules = rules.split('\n').filter((l) => /# handle \d+$/.test(l) && !/^\s*(table|chain)\b/.test(l.trim())).length;
      resources.b = `1 namespace; ${inside.length} links in it (${inside.join(', ')}) + ${added.length} in the daemon's namespace (${added.join(', ')}: the veth's other end, a port of ${net.bridge}); 1 nftables table, ${nRules} NAT rules; 3 sysctls; its own conntrack table; DNS: none (by address)`;
    });
    log('warm-up done (one sample of each path, not counted)');

    const s: Record<PathName, Sample[]> = { a: [], b: [] };
    const selfIp: number[] = [];
    const selfName: number[] = [];
    const selfIpAgain: number[] = [];
    let lastSelf = -Infinity;
    for (let i = 0; i < RUNS; i++) {
      checkStop();
      const order: PathName[] = i % 2 === 0 ? ['a', 'b'] : ['b', 'a'];
      for (const p of order) {
        s[p].push(p === 'a' ? await sampleA(c) : await sampleB(c));
        await sleep(SETTLE_MS);
      }
      const idle = performance.now() - lastSelf;
      if (idle < KEEPALIVE_MS + 500) await sleep(KEEPALIVE_MS + 500 - idle);
      selfIp.push(await vmFetch(peer.ip, `http://${peer.ip}:${APP_PORT}/`, peer.name));
      selfName.push(await vmFetch(peer.ip, `http://${peer.name}:${APP_PORT}/`, peer.name));
      selfIpAgain.push(await vmFetch(peer.ip, `http://${peer.ip}:${APP_PORT}/`, peer.name));
      lastSelf = performance.now();
      const a = s.a.at(-1)!;
      const b = s.b.at(-1)!;
      log(`round ${i + 1}/${RUNS} (${order.join(' ')}): reply a ${ms1(a.replyMs)} (ready ${ms1(a.readyMs)}, neighbour ${a.neighbourKnown ? 'known' : 'unknown'}) b ${ms1(b.replyMs)} (setup ${ms1(b.setupMs)}, renewed ${ms1(b.readyMs)}) ms; VM-to-VM a ${ms1(a.firstFetchMs)} b ${ms1(b.firstFetchMs)} ms; self ${ms1(selfIp.at(-1)!)} ms`);
    }
    const load1 = loadavg();
    const otherQemus1 = await qemuCount();

    type TimeKey = 'replyMs' | 'firstFetchMs' | 'againFetchMs' | 'readyMs' | 'setupMs';
    const col = (p: PathName, k: TimeKey): number[] => s[p].map((x) => x[k]);
    process.stdout.write(`\n${B_CUT_LINK ? 'B_CUT_LINK=1 ' : ''}RUNS=${RUNS} node dist/bench/clone-network.js\n`);
    process.stdout.write(`bench/clone-network: ${IMAGE} app (Node HTTP, ${t.view.memMiB} MiB), template ${t.view.name} (${t.ip}, ${t.mac}), ${RUNS} rounds, order a b / b a alternating; milliseconds\n`);
    process.stdout.write(`(a) renew: daemon restore, agent gives the clone its own IP/MAC; (b) namespace: template IP/MAC kept, NAT to its own address (${uniqueAddress(0)} down) in a namespace of its own; (b) ${B_CUT_LINK ? 'CUTS the link around its renew as (a) does (B_CUT_LINK=1)' : 'leaves the link up'}\n`);
    process.stdout.write(`load average ${load0.map((x) => x.toFixed(2)).join(' ')} at start, ${load1.map((x) => x.toFixed(2)).join(' ')} at end; QEMU processes on the host ${otherQemus0} at start (before ours), ${otherQemus1} at end (incl. our peer)\n\n`);
    printTable(
      ['path', 'n', 'min', 'p50', 'p99', 'max'],
      [
        spreadRow('(a) restore-to-reply: POST {boot:template} -> first GET / reply', col('a', 'replyMs'), 1, 1),
        spreadRow('(b) restore-to-reply: namespace setup + QEMU restore + renew -> first reply via U', col('b', 'replyMs'), 1, 1),
        spreadRow('  (b) namespace setup alone (a pre-made slot saves this)', col('b', 'setupMs'), 1, 1),
        spreadRow('  (b) QEMU start -> first reply (= with a pre-made slot)', s.b.map((x) => x.replyMs - x.setupMs), 1, 1),
        spreadRow('  (a) POST -> its answer (wait=ready: renewed, link up, name registered)', col('a', 'readyMs'), 1, 1),
        spreadRow('  (a) POST answered -> first reply', s.a.map((x) => x.replyMs - x.readyMs), 1, 1),
        spreadRow('  (b) renew answered -> first reply', s.b.map((x) => x.replyMs - x.readyMs), 1, 1),
        spreadRow('(a) VM-to-VM: peer -> clone by name, first request', col('a', 'firstFetchMs'), 1, 1),
        spreadRow('(b) VM-to-VM: peer -> clone by address U, first request', col('b', 'firstFetchMs'), 1, 1),
        spreadRow('  (a) VM-to-VM by name, second request (kept-alive connection)', col('a', 'againFetchMs'), 1, 1),
        spreadRow('  (b) VM-to-VM by address, second request (kept-alive connection)', col('b', 'againFetchMs'), 1, 1),
        spreadRow('  baseline: peer -> itself by IP, new connection', selfIp, 1, 1),
        spreadRow('  baseline: peer -> itself by name (daemon DNS), new connection', selfName, 1, 1),
        spreadRow('  baseline: peer -> itself by IP, kept-alive connection', selfIpAgain, 1, 1),
      ],
    );
    const p50 = (p: PathName, k: TimeKey): number => median(col(p, k));
    process.stdout.write(`\np50 restore-to-reply: (b)/(a) = ${(p50('b', 'replyMs') / p50('a', 'replyMs')).toFixed(3)}; (b) with a pre-made slot / (a) = ${(median(s.b.map((x) => x.replyMs - x.setupMs)) / p50('a', 'replyMs')).toFixed(3)}\n`);
    process.stdout.write(`p50 VM-to-VM first request: (a) by name ${ms1(p50('a', 'firstFetchMs'))} ms, (b) by address ${ms1(p50('b', 'firstFetchMs'))} ms, baseline self by IP ${ms1(median(selfIp))} ms, self by name ${ms1(median(selfName))} ms\n`);
    const known = s.a.filter((x) => x.neighbourKnown).map((x) => x.replyMs);
    const unknown = s.a.filter((x) => !x.neighbourKnown).map((x) => x.replyMs);
    const macs = new Set([...s.a, ...s.b].map((x) => x.bridgeMac));
    process.stdout.write(
      `(a) restore-to-reply by whether the daemon's namespace still had a neighbour entry for the clone's (re-leased) address: ` +
        `yes ${known.length}x, p50 ${known.length ? ms1(median(known)) : '-'} ms; no ${unknown.length}x, p50 ${unknown.length ? ms1(median(unknown)) : '-'} ms\n`,
    );
    process.stdout.write(`bridge ${net.bridge}: ${macs.size} different MAC(s) seen at the ${RUNS * 2} sample starts (its MAC is not set, so it follows the lowest MAC of its ports; a change flushes the namespace's neighbour table)\n`);
    const stalls = (p: PathName): string => `${s[p].filter((x) => x.replyMs - x.readyMs > STALL_MS).length}/${s[p].length}`;
    process.stdout.write(`first reply more than ${STALL_MS} ms after ready (POST answered / renew answered): (a) ${stalls('a')}, (b) ${stalls('b')}${B_CUT_LINK ? ' (b cuts its link: B_CUT_LINK=1)' : ''}\n`);
    process.stdout.write(`(p99 is lib's percentile, rank ceil(0.99 n): with n = ${RUNS} it is the maximum, the worst seen)\n`);
    process.stdout.write(`\nper-clone resources (counted in the warm-up clone of each path):\n  (a) ${resources.a}\n  (b) ${resources.b}\n`);
    process.stdout.write(`\n(b)'s QEMU command line = the probe clone's (${from.vmId}) with these arguments rewritten:\n${changed.join('\n')}\n`);
  } finally {
    await cleanupAll(d, work);
    if (d) clean = await endChecks(d, work ?? '', nftBefore, rootLinksBefore);
  }
  if (!clean) process.exitCode = 1;
}

await main();
