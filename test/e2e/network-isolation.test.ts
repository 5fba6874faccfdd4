import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { VmView } from '../../src/client/client.js';
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
  kind: 'connected' | 'timeout' | 'refused' | 'unreachable' | 'reset' | 'no-such-name' | 'other';
  code?: string;
  ms: number;
}

/** Guests cannot reach the host's services (but the ones allowed); published ports reach guests. */
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
  // The host's end of the VM network: the first address of the link /30.
  const hostVethIp = (): string => d.linkNet.replace(/\.(\d+)\/30$/, (_, n: string) => `.${Number(n) + 1}`);
  const attempt = (host: string, port: number): Promise<Attempt> => guestGet<Attempt>(vm.ip!, `/connect?host=${host}&port=${port}&timeoutMs=2000`);
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
    blocked = await listen(blockedPort);
    allowed = await listen(allowedPort);
    d = await startTestDaemon({ args: ['--allow-host-port', String(allowedPort), '--allow-host-port', String(allowedClosedPort)] });
    await buildFixture(d.home, join(FIXTURES, 'hello'), 'hello');
    vm = await d.client.run({ image: 'hello', name: 'guest', ports: [{ hostPort: published, guestPort: 8080 }] });
    peer = await d.client.run({ image: 'hello', name: 'peer' });
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

  it('a port published with `ports` reaches the guest from 127.0.0.1', async () => {
    const res = await fetch(`http://127.0.0.1:${published}/`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { hostname: string }).hostname, 'guest');
  });

  it('the published port closes when the VM stops and opens again when it starts', async () => {
    await d.client.stop('guest');
    await assert.rejects(fetch(`http://127.0.0.1:${published}/`));
    await d.client.start('guest');
    assert.equal((await fetch(`http://127.0.0.1:${published}/`)).status, 200);
  });
});
