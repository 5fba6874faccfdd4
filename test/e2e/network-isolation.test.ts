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

/** Guests cannot reach the host's services (but the ones allowed); published ports reach guests. */
describe('VM network isolation and published ports', () => {
  let d: TestDaemon;
  let vm: VmView;
  let blocked: Server;
  let allowed: Server;
  let blockedPort: number;
  let allowedPort: number;
  let published: number;
  // The host's end of the VM network: the first address of the link /30.
  const hostVethIp = (): string => d.linkNet.replace(/\.(\d+)\/30$/, (_, n: string) => `.${Number(n) + 1}`);

  before(async () => {
    blockedPort = await freePort();
    allowedPort = await freePort();
    published = await freePort();
    blocked = await listen(blockedPort);
    allowed = await listen(allowedPort);
    d = await startTestDaemon({ args: ['--allow-host-port', String(allowedPort)] });
    await buildFixture(d.home, join(FIXTURES, 'hello'), 'hello');
    vm = await d.client.run({ image: 'hello', name: 'guest', ports: [{ hostPort: published, guestPort: 8080 }] });
  });
  after(async () => {
    await d?.destroy();
    blocked?.close();
    allowed?.close();
  });

  it('a guest cannot connect to a host service listening on 0.0.0.0', async () => {
    const hostIps = [hostVethIp()];
    for (const addrs of Object.values(networkInterfaces())) {
      for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal && a.address !== hostVethIp()) hostIps.push(a.address);
    }
    assert.ok(hostIps.length >= 2, `host addresses to try: ${hostIps.join(', ')}`);
    for (const ip of hostIps) {
      const r = await guestGet<{ connected: boolean; error?: string }>(vm.ip!, `/connect?host=${ip}&port=${blockedPort}`);
      assert.equal(r.connected, false, `guest reached ${ip}:${blockedPort}`);
    }
    // Control: the host itself reaches the service, so the refusal above is the firewall's.
    const { createConnection } = await import('node:net');
    await new Promise<void>((resolve, reject) => createConnection({ host: hostIps[1]!, port: blockedPort }).once('connect', function (this: import('node:net').Socket) {
      this.destroy();
      resolve();
    }).once('error', reject));
  });

  it('the one host port the daemon allows is reachable from the guest', async () => {
    const r = await guestGet<{ connected: boolean; error?: string }>(vm.ip!, `/connect?host=${hostVethIp()}&port=${allowedPort}`);
    assert.equal(r.connected, true, JSON.stringify(r));
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
