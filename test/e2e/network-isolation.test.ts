import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { VmView } from '../../src/client/client.js';
import { GUARD_TABLE, guardChain } from '../../src/network/tap-guard.js';
import { run } from '../../src/util/exec.js';
import { buildFixture, guestGet, startTestDaemon, type TestDaemon } from '../daemon-harness.js';
import { FIXTURES, freePort } from '../helpers.js';

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer((c) => {
      c.on('error', () => undefined);
      c.end('host service\n');
    });
    s.once('error', reject);
    s.listen(port, '0.0.0.0', () => resolve(s));
  });
}

/** How the fixture's `/connect` says an attempt ended. */
interface Attempt {
  connected: boolean;
  kind: 'connected' | 'timeout' | 'refused' | 'unreachable' | 'reset' | 'no-such-name' | 'other' | 'setup-failed';
  code?: string;
  /** The connection's local address, when it connected. */
  local?: string;
  ms: number;
}

/** How the fixture's `/arping` says one ARP request went. */
interface ArpProbe {
  replies: number | null;
  exit: number | string;
  out: string;
}

/** A MAC no VM has (locally administered; leases are 52:55:<ip>). */
const SPOOFED_MAC = '02:00:00:5e:1a:7e';

/**
 * Guests cannot reach the host's services (but the ones allowed), nor each other's ports
 * published on the host; they cannot send as another address or MAC; published ports
 * reach guests.
 */
describe('VM network isolation and published ports', () => {
  let d: TestDaemon;
  let vm: VmView;
  let peer: VmView;
  let blocked: Server;
  let allowed: Server;
  let blockedPort: number;
  let allowedPort: number;
  /** Allowed by the firewall, but nothing listens there: the host itself refuses. */
  let allowedClosedPort: number;
  let published: number;
  /** The peer's port, published on the host's veth address: the one host address guests can reach. */
  let peerPublished: number;
  // The host's end of the VM network: the first address of the link /30.
  const hostVethIp = (): string => d.linkNet.replace(/\.(\d+)\/30$/, (_, n: string) => `.${Number(n) + 1}`);
  const attempt = (host: string, port: number, as: { fromIp?: string; fromMac?: string } = {}): Promise<Attempt> => {
    const q = new URLSearchParams({ host, port: String(port), timeoutMs: '2000', ...as });
    return guestGet<Attempt>(vm.ip!, `/connect?${q.toString()}`, 15_000);
  };
  const arping = (target: string, fromIp?: string): Promise<ArpProbe> =>
    guestGet<ArpProbe>(vm.ip!, `/arping?${new URLSearchParams({ target, ...(fromIp ? { fromIp } : {}) }).toString()}`, 15_000);
  /** An address of the VM subnet no VM holds. */
  const spoofedIp = (): string => {
    const ip = d.subnet.replace(/\.0\/24$/, '.200');
    assert.ok(ip !== d.subnet && ![vm.ip, peer.ip].includes(ip) && !d.leases().some((l) => l.ip === ip), `spoofed address ${ip}`);
    return ip;
  };
  const guardChains = async (): Promise<string[]> => {
    const out = (await run('ip', ['netns', 'exec', d.netns, 'nft', '-j', 'list', 'chains', 'bridge'])).stdout;
    const items = (JSON.parse(out) as { nftables: { chain?: { table: string; name: string } }[] }).nftables;
    return items.flatMap((i) => (i.chain?.table === GUARD_TABLE && i.chain.name.startsWith('guard_') ? [i.chain.name] : [])).sort();
  };
  const tapOf = (v: VmView): string => `vt${v.id.slice(0, 12)}`;
  /**
   * Counts the spoofed frames that get past the bridge's prerouting (where the guard
   * drops): a table of the test's own in the namespace, at the bridge's forward hook (to
   * the peer) and input hook (up to the namespace, the way to the host). Returns a reader
   * and a remover.
   */
  const SPOOF_PROBE = 'uigniter-test-spoofprobe';
  const spoofProbe = async (): Promise<{ frames(): Promise<number>; remove(): Promise<void> }> => {
    const match = [`ether saddr ${SPOOFED_MAC} counter`, `ip saddr ${spoofedIp()} counter`];
    const script = [
      `table bridge ${SPOOF_PROBE} {`,
      `  chain probe_forward {`,
      `    type filter hook forward priority 0;`,
      ...match.map((m) => `    ${m}`),
      `  }`,
      `  chain probe_input {`,
      `    type filter hook input priority 0;`,
      ...match.map((m) => `    ${m}`),
      `  }`,
      `}`,
    ].join('\n');
    await run('ip', ['netns', 'exec', d.netns, 'nft', '-f', '-'], { input: `${script}\n` });
    return {
      async frames() {
        const out = (await run('ip', ['netns', 'exec', d.netns, 'nft', '-j', 'list', 'table', 'bridge', SPOOF_PROBE])).stdout;
        const items = (JSON.parse(out) as { nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] }).nftables;
        return items.reduce((n, i) => n + (i.rule?.expr.reduce((m, e) => m + (e.counter?.packets ?? 0), 0) ?? 0), 0);
      },
      async remove() {
        await run('ip', ['netns', 'exec', d.netns, 'nft', 'delete', 'table', 'bridge', SPOOF_PROBE]);
      },
    };
  };
  /** Every way of claiming another identity, to the peer and to the host's allowed port, each after a control as itself. */
  const spoofAttempts = async (): Promise<{ what: string; r: Attempt }[]> => {
    const out: { what: string; r: Attempt }[] = [];
    for (const [host, port] of [[peer.ip!, 8080], [hostVethIp(), allowedPort]] as const) {
      const own = await attempt(host, port);
      assert.equal(own.kind, 'connected', `control: the guest reaches ${host}:${port} as itself (${JSON.stringify(own)})`);
      assert.equal(own.local, vm.ip, 'the control connected from the guest own address');
      out.push({ what: `${host}:${port} from ${spoofedIp()}`, r: await attempt(host, port, { fromIp: spoofedIp() }) });
      out.push({ what: `${host}:${port} from MAC ${SPOOFED_MAC}`, r: await attempt(host, port, { fromMac: SPOOFED_MAC }) });
    }
    return out;
  };
  /**
   * The positive control beside each blocked attempt: the same guest, at the same moment,
   * reaches the peer VM by name and by address. A guest whose network is broken fails
   * here instead of passing the blocked checks.
   */
  const controlReachesPeer = async (what: string): Promise<void> => {
    for (const host of ['peer', peer.ip!]) {
      const r = await attempt(host, 8080);
      assert.equal(r.kind, 'connected', `control before ${what}: the guest reaches the peer at ${host} (${JSON.stringify(r)})`);
    }
  };

  before(async () => {
    blockedPort = await freePort();
    allowedPort = await freePort();
    allowedClosedPort = await freePort();
    published = await freePort();
    peerPublished = await freePort();
    blocked = await listen(blockedPort);
    allowed = await listen(allowedPort);
    d = await startTestDaemon({ args: ['--allow-host-port', String(allowedPort), '--allow-host-port', String(allowedClosedPort)] });
    await buildFixture(d.home, join(FIXTURES, 'hello'), 'hello');
    vm = await d.client.run({ image: 'hello', name: 'guest', ports: [{ hostPort: published, guestPort: 8080 }] });
    peer = await d.client.run({ image: 'hello', name: 'peer', ports: [{ hostPort: peerPublished, guestPort: 8080, hostAddr: hostVethIp() }] });
  });
  after(async () => {
    await d?.destroy();
    blocked?.close();
    allowed?.close();
  });

  it('a guest cannot connect to a host service listening on 0.0.0.0: the firewall drops it', async () => {
    const hostIps = [hostVethIp()];
    for (const addrs of Object.values(networkInterfaces())) {
      for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal && a.address !== hostVethIp()) hostIps.push(a.address);
    }
    assert.ok(hostIps.length >= 2, `host addresses to try: ${hostIps.join(', ')}`);
    for (const ip of hostIps) {
      await controlReachesPeer(`${ip}:${blockedPort}`);
      const r = await attempt(ip, blockedPort);
      // Dropped (the forward policy), so the guest waits its whole timeout: not refused
      // (which would mean the packet reached the host), not unreachable (no route: a
      // broken guest network).
      assert.equal(r.kind, 'timeout', `guest to ${ip}:${blockedPort}: ${JSON.stringify(r)}`);
      assert.ok(r.ms >= 1900, `the attempt waited for its timeout (${r.ms} ms)`);
    }
    // Control: the host itself reaches the service, so the drop above is the firewall's.
    const { createConnection } = await import('node:net');
    for (const ip of hostIps) {
      await new Promise<void>((resolve, reject) => createConnection({ host: ip, port: blockedPort }).once('connect', function (this: import('node:net').Socket) {
        this.destroy();
        resolve();
      }).once('error', reject));
    }
  });

  it('the host ports the daemon allows are reachable from the guest', async () => {
    await controlReachesPeer('the allowed port');
    const r = await attempt(hostVethIp(), allowedPort);
    assert.equal(r.kind, 'connected', JSON.stringify(r));
    // An allowed port with nothing behind it: the packet gets to the host, which refuses
    // (a reset, at once): what a blocked port would look like without the firewall.
    const closed = await attempt(hostVethIp(), allowedClosedPort);
    assert.equal(closed.kind, 'refused', JSON.stringify(closed));
    assert.ok(closed.ms < 1900, `refused at once (${closed.ms} ms)`);
  });

  it('a guest cannot send as another address or MAC: its tap drops it, to a peer VM and to the host', async () => {
    // The guard of each running VM's tap is in place.
    assert.deepEqual(await guardChains(), [guardChain(tapOf(vm)), guardChain(tapOf(peer))].sort());
    const probe = await spoofProbe();
    for (const { what, r } of await spoofAttempts()) {
      // Dropped at the bridge, so the attempt waits its whole timeout (not refused, not
      // unreachable: the guest's network and the fixture's address change worked).
      assert.equal(r.kind, 'timeout', `${what}: ${JSON.stringify(r)}`);
      assert.ok(r.ms >= 1900, `${what}: waited for its timeout (${r.ms} ms)`);
    }
    assert.equal(await probe.frames(), 0, 'no spoofed frame got past the bridge (the next test has it count them without the guard)');
    await probe.remove();
    // ARP: the peer answers the guest asking as itself, not asking as another address.
    const own = await arping(peer.ip!);
    assert.equal(own.replies, 1, `control: ARP as itself is answered: ${JSON.stringify(own)}`);
    const spoofed = await arping(peer.ip!, spoofedIp());
    assert.equal(spoofed.replies, 0, `ARP claiming ${spoofedIp()} is dropped: ${JSON.stringify(spoofed)}`);
    // The guest is itself again after the attempts.
    await controlReachesPeer('the end of the spoofing attempts');
  });

  it('the spoofing attempts get through without the guard, and a restarted daemon puts it back on adopted VMs', async () => {
    // What the test above saw is the guard's doing: with the guard table removed by hand,
    // the same spoofed frames get past the bridge's prerouting, to the peer and up to the
    // namespace (counted). They still get no answer: the bridge answers ARP for its ports
    // (proxy_arp) from the namespace's neighbour table, which holds each lease's address
    // and MAC, permanent (so nothing is broadcast to find a guest, and no ARP from a guest
    // rewrites it). A reply to an address nobody leased is never resolved, and one to the
    // guest's own address goes to its lease's MAC, not the spoofed one.
    await run('ip', ['netns', 'exec', d.netns, 'nft', 'delete', 'table', 'bridge', GUARD_TABLE]);
    const neighbours = JSON.parse((await run('ip', ['-n', d.netns, '-j', 'neigh', 'show', 'dev', d.bridge])).stdout) as { dst: string; lladdr?: string; state: string[] }[];
    const pinned = neighbours.find((n) => n.dst === vm.ip);
    assert.deepEqual([pinned?.lladdr, pinned?.state], [vm.mac, ['PERMANENT']], JSON.stringify(neighbours));
    const probe = await spoofProbe();
    const attempts = await spoofAttempts();
    const through = await probe.frames();
    await probe.remove();
    assert.ok(through >= attempts.length, `without the guard, the spoofed frames get past the bridge (${through} counted for ${attempts.length} attempts)`);
    for (const { what, r } of attempts) assert.equal(r.kind, 'timeout', `without the guard, ${what} still gets no answer: ${JSON.stringify(r)}`);
    const spoofed = await arping(peer.ip!, spoofedIp());
    assert.equal(spoofed.replies, 1, `without the guard, ARP claiming ${spoofedIp()} is answered: ${JSON.stringify(spoofed)}`);
    // With no guard table a create cannot guard its tap: it fails, and the tap it made at
    // the same time as the guard is taken away with its lease and record.
    const tapsBefore = await d.taps();
    const leasesBefore = d.leases();
    await assert.rejects(d.client.run({ image: 'hello', name: 'unguarded' }), (e: Error) => /nft/.test(e.message));
    assert.deepEqual(await d.taps(), tapsBefore, 'no tap left by the failed create');
    assert.deepEqual(d.leases(), leasesBefore, 'no lease left by the failed create');
    assert.deepEqual((await d.client.list()).map((v) => v.name).sort(), [peer.name, vm.name].sort());
    // A daemon start renders the table again with the guards of the taps it adopts.
    await d.kill('SIGTERM');
    await d.restart();
    assert.deepEqual(await guardChains(), [guardChain(tapOf(vm)), guardChain(tapOf(peer))].sort());
    const again = await attempt(peer.ip!, 8080, { fromIp: spoofedIp() });
    assert.equal(again.kind, 'timeout', `after the restart, from ${spoofedIp()}: ${JSON.stringify(again)}`);
    await controlReachesPeer('after the restart');
  });

  it("a guest cannot reach another guest's published port through the host; the host and the bridge can", async () => {
    // Control: the port is published (the host reaches the peer through it)...
    const res = await fetch(`http://${hostVethIp()}:${peerPublished}/`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { hostname: string }).hostname, 'peer');
    // ... and the guest reaches the peer's port directly on the bridge (allowed by design).
    await controlReachesPeer('the published port');
    // Through the host's veth address (where the port is published: the forward chain
    // drops it) and through the gateway (the bridge's address in the namespace, where
    // nothing listens: its input chain drops it, else it would be refused).
    const gateway = d.subnet.replace(/\.0\/24$/, '.1');
    for (const host of [hostVethIp(), gateway]) {
      const r = await attempt(host, peerPublished);
      assert.equal(r.kind, 'timeout', `guest to the peer's published port via ${host}:${peerPublished}: ${JSON.stringify(r)}`);
      assert.ok(r.ms >= 1900, `the attempt waited for its timeout (${r.ms} ms)`);
    }
  });

  it('a port published with `ports` reaches the guest from 127.0.0.1', async () => {
    const res = await fetch(`http://127.0.0.1:${published}/`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { hostname: string }).hostname, 'guest');
  });

  it('the published port closes when the VM stops and opens again when it starts', async () => {
    await d.client.stop('guest');
    await assert.rejects(fetch(`http://127.0.0.1:${published}/`));
    // The stopped VM's tap took its guard with it; the start brings both back.
    assert.deepEqual(await guardChains(), [guardChain(tapOf(peer))]);
    await d.client.start('guest');
    assert.equal((await fetch(`http://127.0.0.1:${published}/`)).status, 200);
    assert.deepEqual(await guardChains(), [guardChain(tapOf(vm)), guardChain(tapOf(peer))].sort());
  });
});
