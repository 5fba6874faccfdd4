import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { DnsServer } from '../../src/network/dns-server.js';

describe('DNS for VM names (real UDP on loopback)', () => {
  const dns = new DnsServer('uigniter.internal');
  before(async () => {
    dns.set('db', '172.30.0.5');
    await dns.listen('127.0.0.1', 0);
  });
  after(() => dns.close());

  // dns-packet decodes the response code as `rcode`; its types leave it out.
  type Reply = dnsPacket.Packet & { rcode?: string };
  const ask = (name: string, type: 'A' | 'AAAA' = 'A'): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const s = createSocket('udp4');
      s.once('message', (m) => {
        s.close();
        resolve(dnsPacket.decode(m) as Reply);
      });
      s.once('error', reject);
      s.send(dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] }), dns.port!, '127.0.0.1');
    });

  it('answers a VM name, short or in the domain', async () => {
    for (const name of ['db', 'db.uigniter.internal', 'DB']) {
      const r = await ask(name);
      assert.equal(r.rcode, 'NOERROR');
      assert.deepEqual(r.answers?.map((a) => (a as { data: string }).data), ['172.30.0.5']);
    }
  });

  it('NXDOMAIN for an unknown VM, REFUSED for names outside, empty for other record types', async () => {
    assert.equal((await ask('nope')).rcode, 'NXDOMAIN');
    assert.equal((await ask('example.com')).rcode, 'REFUSED');
    const aaaa = await ask('db', 'AAAA');
    assert.equal(aaaa.rcode, 'NOERROR');
    assert.deepEqual(aaaa.answers, []);
  });

  it('forgets a name when its VM stops', async () => {
    dns.set('db', null);
    assert.equal((await ask('db')).rcode, 'NXDOMAIN');
  });
});
