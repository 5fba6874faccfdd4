import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect as connectTcp, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { VmView } from '../../src/client/client.js';
import { egressTableName, VETH_GROUP } from '../../src/network/egress.js';
import { run } from '../../src/util/exec.js';
import { buildFixture, guestGet, startTestDaemon, type TestDaemon } from '../daemon-harness.js';
import { cli, cliSpawn, FIXTURES, freePort, waitFor } from '../helpers.js';

/**
 * `uigniter daemon --egress` on real guests. The "outside" is a namespace this test creates:
 * a veth pair to the host (198.51.100.4k/30, documentation range) and an HTTP server on a
 * /32 of another documentation range (203.0.113.0/24) routed from the host through it. No
 * packet of this test goes anywhere else; everything is removed and checked at the end.
 *
 * One guest (test/fixtures/egress-probe) lives through four daemons on the same home and
 * namespace: without egress, with it, stopped (the VM stays, egress goes), with it again and
 * killed (then `daemon --cleanup`); a second --egress daemon runs alongside for a while.
 * Each blocked check comes with a positive control from the same guest at the same moment,
 * and must fail by timeout (a drop), not by a broken guest network.
 */

interface Probe {
  connected: boolean;
  error?: string;
}
interface Fetched {
  status?: number;
  body?: string;
  error?: string;
}

const k = (process.pid % 63) + 1;
const OUT = {
  netns: `uigt-out-${process.pid}`,
  hostVeth: `ueg${process.pid}h`,
  outVeth: `ueg${process.pid}o`,
  hostIp: `198.51.100.${4 * k + 1}`,
  peerIp: `198.51.100.${4 * k + 2}`,
  serverIp: `203.0.113.${k}`,
};

const SERVER = `
const http = require('node:http');
http.createServer((req, res) => res.end(JSON.stringify({ remote: req.socket.remoteAddress }))).listen(80, process.argv[1], () => console.log('listening'));
`;
const CONNECT = `
const s = require('node:net').connect({ host: process.argv[1], port: Number(process.argv[2]), timeout: 2000 });
const done = (r) => { console.log(JSON.stringify(r)); s.destroy(); };
s.once('connect', () => done({ connected: true }));
s.once('timeout', () => done({ connected: false, error: 'timeout' }));
s.once('error', (e) => done({ connected: false, error: e.code }));
`;

const UDP = `
const s = require('node:dgram').createSocket('udp4');
let n = 0;
const send = () => s.send('hello', Number(process.argv[2]), process.argv[1], () => (++n < 3 ? setTimeout(send, 50) : s.close()));
send();
`;

const sysctl = async (name: string): Promise<string> => (await readFile(`/proc/sys/net/ipv4/${name}`, 'utf8')).trim();
const hostTables = async (): Promise<string[]> =>
  ((JSON.parse((await run('nft', ['-j', 'list', 'tables', 'inet'])).stdout) as { nftables: { table?: { name: string } }[] }).nftables ?? []).flatMap((i) =>
    i.table ? [i.table.name] : [],
  );
const exists = (cmd: string, args: string[]): Promise<boolean> => run(cmd, args).then(
  () => true,
  () => false,
);

function listen(port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer((c) => {
      c.on('error', () => undefined);
      c.end('host service\n');
    });
    s.once('error', reject);
    s.listen(port, host, () => resolve(s));
  });
}

function hostConnect(host: string, port: number, localAddress?: string): Promise<Probe> {
  return new Promise((resolve) => {
    const s = connectTcp({ host, port, timeout: 2000, ...(localAddress ? { localAddress } : {}) });
    const done = (r: Probe): void => {
      s.destroy();
      resolve(r);
    };
    s.once('connect', () => done({ connected: true }));
    s.once('timeout', () => done({ connected: false, error: 'timeout' }));
    s.once('error', (e: NodeJS.ErrnoException) => done({ connected: false, error: e.code ?? e.message }));
  });
}

/** Three UDP datagrams to a guest, from the outside namespace or (with no netns) the host. */
async function sendUdp(netns: string | null, host: string, port: number): Promise<void> {
  const cmd = [process.execPath, '-e', UDP, host, String(port)];
  await (netns ? run('ip', ['netns', 'exec', netns, ...cmd]) : run(cmd[0]!, cmd.slice(1)));
}

/** A TCP connection attempt from the outside namespace (a machine on the host's LAN, say). */
async function outsideConnect(host: string, port: number): Promise<Probe> {
  const r = await run('ip', ['netns', 'exec', OUT.netns, process.execPath, '-e', CONNECT, host, String(port)]);
  return JSON.parse(r.stdout) as Probe;
}

async function createOutside(subnet: string): Promise<ChildProcess> {
  await run('ip', ['netns', 'add', OUT.netns]);
  await run('ip', ['link', 'add', OUT.hostVeth, 'type', 'veth', 'peer', 'name', OUT.outVeth, 'netns', OUT.netns]);
  await run('ip', ['addr', 'add', `${OUT.hostIp}/30`, 'dev', OUT.hostVeth]);
  await run('ip', ['link', 'set', OUT.hostVeth, 'up']);
  await run('ip', ['-n', OUT.netns, 'link', 'set', 'lo', 'up']);
  await run('ip', ['-n', OUT.netns, 'addr', 'add', `${OUT.peerIp}/30`, 'dev', OUT.outVeth]);
  await run('ip', ['-n', OUT.netns, 'addr', 'add', `${OUT.serverIp}/32`, 'dev', 'lo']);
  await run('ip', ['-n', OUT.netns, 'link', 'set', OUT.outVeth, 'up']);
  // The outside knows the way to the guests (as a LAN neighbour told about them would), but
  // has no default route: an answer to anything but the host's veth address goes nowhere.
  await run('ip', ['-n', OUT.netns, 'route', 'add', subnet, 'via', OUT.hostIp]);
  await run('ip', ['route', 'add', `${OUT.serverIp}/32`, 'via', OUT.peerIp, 'dev', OUT.hostVeth]);
  // Never aim at anything real: the server's address must leave through the test's veth.
  const via = (await run('ip', ['-j', 'route', 'get', OUT.serverIp])).stdout;
  assert.equal((JSON.parse(via) as { dev: string }[])[0]?.dev, OUT.hostVeth, `route to ${OUT.serverIp}: ${via}`);
  const server = spawn('ip', ['netns', 'exec', OUT.netns, process.execPath, '-e', SERVER, OUT.serverIp], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  server.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  server.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  await waitFor(async () => out.includes('listening'), 10_000, `the outside server (${out})`);
  return server;
}

async function removeOutside(server: ChildProcess | undefined): Promise<void> {
  if (server && server.exitCode === null && server.signalCode === null) {
    const gone = new Promise<void>((resolve) => server.once('exit', () => resolve()));
    server.kill('SIGTERM');
    await gone;
  }
  await run('ip', ['route', 'del', `${OUT.serverIp}/32`]).catch(() => undefined);
  await run('ip', ['link', 'del', OUT.hostVeth]).catch(() => undefined);
  await run('ip', ['netns', 'del', OUT.netns]).catch(() => undefined);
}

describe('egress: guests reach beyond the host only with --egress, never the host itself', () => {
  let d: TestDaemon;
  let vm: VmView;
  let server: ChildProcess | undefined;
  let egressDaemon: ReturnType<typeof cliSpawn> | undefined;
  const services: Server[] = [];
  let blockedPort: number;
  let allowedPort: number;
  const before0 = { ipForward: '', acceptRedirects: '' };
  const table = (): string => egressTableName(d.netns);
  const hostVethIp = (): string => d.linkNet.replace(/\.(\d+)\/30$/, (_, n: string) => `.${Number(n) + 1}`);
  const serverUrl = `http://${OUT.serverIp}/`;
  const daemonArgs = (): string[] => ['daemon', '--port', String(d.port), '--no-ui', '--netns', d.netns, '--bridge', d.bridge, '--subnet', d.subnet, '--link-net', d.linkNet, '--allow-host-port', String(allowedPort)];

  const fetchOut = (): Promise<Fetched> => guestGet<Fetched>(vm.ip!, `/fetch?url=${encodeURIComponent(serverUrl)}`);
  const connect = (host: string, port: number): Promise<Probe> => guestGet<Probe>(vm.ip!, `/connect?host=${host}&port=${port}`);
  /** The positive control: the guest network works (the allowed host port answers). */
  async function controlOk(): Promise<void> {
    assert.deepEqual(await connect(hostVethIp(), allowedPort), { connected: true }, 'control: the guest reaches the allowed host port');
  }

  /** A daemon of our own on the same home and network, with --egress (and adopting the VM). */
  async function startEgressDaemon(): Promise<void> {
    const t0 = Date.now();
    egressDaemon = cliSpawn(d.home, [...daemonArgs(), '--egress']);
    await waitFor(async () => (await fetch(`${d.url}/healthz`)).ok, 30_000, `the --egress daemon to listen (${egressDaemon.err()})`, 50);
    await waitFor(async () => (await d.client.get('guest')).state === 'running', 30_000, 'the VM adopted');
    console.log(`# --egress daemon listening and VM adopted in ${Date.now() - t0} ms`);
  }
  async function stopEgressDaemon(signal: NodeJS.Signals): Promise<void> {
    const e = egressDaemon;
    egressDaemon = undefined;
    if (!e || e.child.exitCode !== null || e.child.signalCode !== null) return;
    e.child.kill(signal);
    await e.done;
  }

  before(async () => {
    before0.ipForward = await sysctl('ip_forward');
    before0.acceptRedirects = await sysctl('conf/all/accept_redirects');
    blockedPort = await freePort();
    allowedPort = await freePort();
    d = await startTestDaemon({ args: ['--allow-host-port', String(allowedPort)] });
    server = await createOutside(d.subnet);
    // Host services on the daemon's veth address (one allowed, one not) and on another
    // address of the host (the host's end of the outside veth).
    services.push(await listen(allowedPort, hostVethIp()), await listen(blockedPort, hostVethIp()), await listen(blockedPort, OUT.hostIp));
    await buildFixture(d.home, join(FIXTURES, 'egress-probe'), 'egress-probe');
    const t0 = Date.now();
    vm = await d.client.run({ image: 'egress-probe', name: 'guest' });
    console.log(`# guest ${vm.ip} ready in ${Date.now() - t0} ms`);
  });

  after(async () => {
    await stopEgressDaemon('SIGKILL').catch(() => undefined);
    await d?.destroy().catch(() => undefined);
    await removeOutside(server);
    for (const s of services) s.close();
  });

  it('without --egress: the outside is out of reach, though the guest network works', async () => {
    assert.ok(!(await hostTables()).includes(table()), 'no egress table without --egress');
    assert.equal(await sysctl('ip_forward'), before0.ipForward);
    await controlOk();
    const r = await fetchOut();
    assert.equal(r.error, 'timeout', `the guest reached the outside without egress: ${JSON.stringify(r)}`);
    await controlOk();
  });

  it('with --egress: the guest reaches the outside server, masqueraded as the host end of its veth', async () => {
    await d.kill('SIGTERM'); // the VM keeps running, for the next daemon to adopt
    await startEgressDaemon();
    assert.ok((await hostTables()).includes(table()), 'the egress table exists');
    assert.equal(await sysctl('ip_forward'), '1');
    const t0 = Date.now();
    const r = await fetchOut();
    const ms = Date.now() - t0;
    assert.equal(r.status, 200, JSON.stringify(r));
    assert.deepEqual(JSON.parse(r.body!), { remote: OUT.hostIp });
    console.log(`# guest -> outside HTTP through both NATs: ${ms} ms (first request)`);
  });

  it('with --egress: the daemon\'s veth address stays closed but for DNS and the allowed ports', async () => {
    await controlOk();
    const r = await connect(hostVethIp(), blockedPort);
    assert.deepEqual(r, { connected: false, error: 'timeout' });
    await controlOk();
    assert.deepEqual(await hostConnect(hostVethIp(), blockedPort), { connected: true }, 'control: the service answers the host');
  });

  it('with --egress: another address of the host is unreachable, though the outside reaches it', async () => {
    assert.equal((await fetchOut()).status, 200, 'control: egress works right now');
    const r = await connect(OUT.hostIp, blockedPort);
    assert.deepEqual(r, { connected: false, error: 'timeout' }, `the guest reached the host at ${OUT.hostIp}`);
    assert.deepEqual(await outsideConnect(OUT.hostIp, blockedPort), { connected: true }, 'control: the service answers the outside');
    // The host itself, from that address, still reaches the guest: answers are let back.
    assert.deepEqual(await hostConnect(vm.ip!, 8080, OUT.hostIp), { connected: true }, 'the guest\'s answers to the host are dropped');
    assert.equal((await fetchOut()).status, 200, 'control: egress still works');
  });

  it('with --egress: the host forwards nothing from outside into the VM network, not even one way', async () => {
    assert.deepEqual(await outsideConnect(vm.ip!, 8080), { connected: false, error: 'timeout' });
    await sendUdp(OUT.netns, vm.ip!, 9001);
    // Controls: the guest answers the host, and gets the host's datagrams.
    assert.equal((await fetch(`http://${vm.ip}:8080/healthz`, { signal: AbortSignal.timeout(5000) })).status, 200);
    await sendUdp(null, vm.ip!, 9001);
    const { senders } = await waitFor(
      async () => {
        const r = await guestGet<{ senders: string[] }>(vm.ip!, '/udp');
        return r.senders.length > 0 && r;
      },
      5000,
      'the host\'s datagrams',
    );
    assert.ok(senders.includes(hostVethIp()), `control: the host's datagrams arrive (${senders.join(', ')})`);
    assert.ok(!senders.includes(OUT.peerIp), `datagrams from outside reached the guest: ${senders.join(', ')}`);
  });

  it('with --egress: guests cannot go on into another daemon\'s VM network (host veths share a group)', async () => {
    const group = async (dev: string): Promise<string> => String((JSON.parse((await run('ip', ['-j', 'link', 'show', 'dev', dev])).stdout) as { group: string | number }[])[0]?.group);
    assert.equal(await group(`${d.bridge}-h`), String(VETH_GROUP));
    // Dress the outside veth up as another daemon's: the way there closes.
    await run('ip', ['link', 'set', OUT.hostVeth, 'group', String(VETH_GROUP)]);
    try {
      assert.equal((await fetchOut()).error, 'timeout');
      await controlOk();
    } finally {
      await run('ip', ['link', 'set', OUT.hostVeth, 'group', 'default']);
    }
    assert.equal((await fetchOut()).status, 200, 'control: open again once the veth is no daemon\'s');
  });

  it('two --egress daemons: separate tables, the original forwarding recorded in both, the first to stop leaves it on', async () => {
    const other = await startTestDaemon({ args: ['--egress'] });
    try {
      const tables = await hostTables();
      assert.ok(tables.includes(table()) && tables.includes(egressTableName(other.netns)), tables.join(', '));
      for (const t of [table(), egressTableName(other.netns)]) {
        const text = (await run('nft', ['list', 'table', 'inet', t])).stdout;
        assert.match(text, new RegExp(`comment ".*ip_forward=${before0.ipForward} all\\.accept_redirects=${before0.acceptRedirects}"`), t);
      }
    } finally {
      await other.destroy();
    }
    assert.ok(!(await hostTables()).includes(egressTableName(other.netns)), 'the other daemon\'s table is gone');
    assert.equal(await sysctl('ip_forward'), '1', 'forwarding stays on while our daemon has egress');
    assert.equal((await fetchOut()).status, 200, 'and our guest still gets out');
  });

  it('a stopped --egress daemon takes egress with it: table gone, forwarding restored, VM left running', async () => {
    await stopEgressDaemon('SIGTERM');
    assert.ok(!(await hostTables()).includes(table()), 'the egress table is gone');
    assert.equal(await sysctl('ip_forward'), before0.ipForward);
    assert.equal(await sysctl('conf/all/accept_redirects'), before0.acceptRedirects);
    const nsRules = (await run('ip', ['netns', 'exec', d.netns, 'nft', 'list', 'table', 'inet', 'uigniter'])).stdout;
    assert.doesNotMatch(nsRules, /masquerade|daddr !=/);
    await controlOk();
    assert.equal((await fetchOut()).error, 'timeout', 'the guest still reaches the outside');
    await controlOk();
  });

  it('a killed --egress daemon leaves table and forwarding; `daemon --cleanup` restores them', async () => {
    await startEgressDaemon();
    assert.equal((await fetchOut()).status, 200, 'egress works again with the next --egress daemon');
    await stopEgressDaemon('SIGKILL');
    assert.ok((await hostTables()).includes(table()), 'a crash leaves the table');
    assert.equal(await sysctl('ip_forward'), '1');
    const r = await cli(d.home, ['daemon', '--cleanup', '--netns', d.netns, '--bridge', d.bridge, '--subnet', d.subnet, '--link-net', d.linkNet]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!(await hostTables()).includes(table()), 'the egress table is gone after --cleanup');
    assert.equal(await sysctl('ip_forward'), before0.ipForward);
    assert.equal(await sysctl('conf/all/accept_redirects'), before0.acceptRedirects);
  });

  it('leaves nothing behind: namespaces, veths, routes, tables, sysctls', async () => {
    await d.destroy();
    await removeOutside(server);
    server = undefined;
    for (const ns of [d.netns, OUT.netns]) assert.ok(!(await exists('ip', ['netns', 'exec', ns, 'true'])), `namespace ${ns} is gone`);
    for (const link of [OUT.hostVeth, `${d.bridge}-h`]) assert.ok(!(await exists('ip', ['link', 'show', 'dev', link])), `veth ${link} is gone`);
    const routes = (await run('ip', ['route', 'show'])).stdout;
    assert.doesNotMatch(routes, new RegExp(`${OUT.serverIp.replace(/\./g, '\\.')}|${d.subnet.split('/')[0]!.replace(/\./g, '\\.')}`));
    assert.ok(!(await hostTables()).some((t) => t === table()));
    assert.equal(await sysctl('ip_forward'), before0.ipForward);
    assert.equal(await sysctl('conf/all/accept_redirects'), before0.acceptRedirects);
  });
});
