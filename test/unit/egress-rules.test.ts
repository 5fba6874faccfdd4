import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { egressTableName, formatSaved, hostEgressRules, parseSaved, VETH_GROUP, type HostEgressConfig } from '../../src/network/egress.js';
import { firewallRules, type FirewallConfig } from '../../src/network/firewall.js';
import { DEFAULT_NETWORK, layoutFor } from '../../src/network/vm-network-config.js';

const ns: FirewallConfig = { netns: 'n', bridge: 'br', uplink: 'br-n', hostAddress: '10.0.0.1', allowHostPorts: [8125] };
const host: HostEgressConfig = {
  table: egressTableName('uigt-1-2'),
  hostVeth: 'br-h',
  hostAddress: '10.0.0.1',
  linkNet: '10.0.0.0/30',
  saved: { ipForward: '0', acceptRedirects: '1' },
};

/** The rules of one chain, in order, without indentation. */
function chain(rules: string, name: string): string[] {
  const m = new RegExp(`chain ${name} \\{\\n([\\s\\S]*?)\\n\\s*\\}`).exec(rules);
  assert.ok(m, `no chain ${name} in:\n${rules}`);
  return m[1]!.split('\n').map((l) => l.trim());
}

/** `nft -c` parses and checks a ruleset against the kernel without applying it (root only). */
function nftAccepts(rules: string): boolean | null {
  if (process.getuid?.() !== 0) return null;
  const r = spawnSync('nft', ['-c', '-f', '-'], { input: rules, encoding: 'utf8' });
  if (r.error) return null;
  assert.equal(r.status, 0, r.stderr);
  return true;
}

describe('egress: options', () => {
  it('is off by default, and the layout knows the link /30 the host masquerades', () => {
    assert.equal(DEFAULT_NETWORK.egress, false);
    assert.equal(layoutFor(DEFAULT_NETWORK).egress, false);
    const l = layoutFor({ ...DEFAULT_NETWORK, egress: true, linkNet: '172.28.255.8/30' });
    assert.equal(l.egress, true);
    assert.equal(l.linkNet, '172.28.255.8/30');
    assert.equal(layoutFor(DEFAULT_NETWORK).linkNet, '172.30.255.252/30');
  });

  it('names the host table after the namespace, so two daemons never share one', () => {
    assert.equal(egressTableName('uigniter'), 'uigniter-egress-uigniter');
    assert.notEqual(egressTableName('uigt-1-1'), egressTableName('uigt-1-2'));
  });
});

describe('egress: the namespace firewall', () => {
  it('without egress: nothing leaves but to the host address, no NAT (unchanged)', () => {
    const rules = firewallRules(ns);
    assert.doesNotMatch(rules, /daddr !=/);
    assert.doesNotMatch(rules, /masquerade|type nat/);
    assert.deepEqual(firewallRules({ ...ns, egress: false }), rules);
    nftAccepts(rules);
  });

  it('with egress: guests go out of the uplink to anything but the host address, masqueraded', () => {
    const rules = firewallRules({ ...ns, egress: true });
    const fwd = chain(rules, 'forward');
    assert.equal(fwd[0], 'type filter hook forward priority filter; policy drop;');
    assert.ok(fwd.includes('iifname "br" oifname "br-n" ip daddr != 10.0.0.1 accept'), fwd.join('\n'));
    // The host address keeps only DNS and the allowed ports; nothing else becomes accepted.
    assert.ok(fwd.includes('iifname "br" ip daddr 10.0.0.1 tcp dport { 8125 } accept'));
    assert.equal(fwd.filter((r) => r.endsWith('accept')).length, 7);
    assert.deepEqual(chain(rules, 'postrouting'), [
      'type nat hook postrouting priority srcnat; policy accept;',
      'iifname "br" oifname "br-n" ip daddr != 10.0.0.1 masquerade',
    ]);
    // The input chain (the namespace itself) does not change.
    assert.deepEqual(chain(rules, 'input'), chain(firewallRules(ns), 'input'));
    nftAccepts(rules);
  });
});

describe('egress: the host table', () => {
  const rules = hostEgressRules(host);

  it('replaces itself atomically and keeps the forwarding record in its comment', () => {
    assert.match(rules, /^table inet uigniter-egress-uigt-1-2\ndelete table inet uigniter-egress-uigt-1-2\ntable inet uigniter-egress-uigt-1-2 \{\n/);
    const comment = /comment "([^"]*)"/.exec(rules)?.[1];
    assert.ok(comment);
    assert.deepEqual(parseSaved(comment), host.saved);
    assert.deepEqual(parseSaved(formatSaved({ ipForward: '1', acceptRedirects: '0' })), { ipForward: '1', acceptRedirects: '0' });
    assert.equal(parseSaved('something else'), null);
  });

  it('drops, before any DNAT, what the VM network sends to a host address other than the veth one, but answers', () => {
    assert.deepEqual(chain(rules, 'prerouting'), [
      'type filter hook prerouting priority mangle; policy accept;',
      'iifname "br-h" ct direction reply accept',
      'iifname "br-h" ip daddr != 10.0.0.1 fib daddr type { local, broadcast, anycast, multicast } drop',
    ]);
  });

  it('forwards nothing new into the VM network or into another daemon\'s, and only the masqueraded source out', () => {
    assert.deepEqual(chain(rules, 'forward'), [
      'type filter hook forward priority filter; policy accept;',
      'oifname "br-h" ct state established,related accept',
      'oifname "br-h" drop',
      `iifname "br-h" oifgroup ${VETH_GROUP} drop`,
      'iifname "br-h" ip saddr != 10.0.0.0/30 drop',
    ]);
  });

  it('masquerades the link /30 towards every other interface', () => {
    assert.deepEqual(chain(rules, 'postrouting'), [
      'type nat hook postrouting priority srcnat; policy accept;',
      'iifname "br-h" ip saddr 10.0.0.0/30 oifname != "br-h" masquerade',
    ]);
  });

  it('is a ruleset nft accepts', () => {
    nftAccepts(rules);
  });
});
