import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { contains, nth, parseCidr } from '../../src/network/cidr.js';
import { firewallRules } from '../../src/network/firewall.js';
import { guestAddresses, layoutFor, macForIp } from '../../src/network/vm-network-config.js';
import { DEFAULT_NETWORK } from '../../src/network/vm-network-config.js';

describe('VM network layout', () => {
  it('derives gateway, veth addresses and names from the subnet', () => {
    const l = layoutFor(DEFAULT_NETWORK);
    assert.equal(l.gateway, '172.30.0.1');
    assert.equal(l.hostAddress, '172.30.255.253');
    assert.equal(l.nsAddress, '172.30.255.254');
    assert.equal(l.hostVeth, 'uig0-h');
    assert.equal(l.nsVeth, 'uig0-n');
  });

  it('hands out guest addresses after the last one leased, skipping network, gateway and broadcast', () => {
    const l = layoutFor({ ...DEFAULT_NETWORK, subnet: '10.9.8.0/29' });
    assert.deepEqual([...guestAddresses(l)], ['10.9.8.2', '10.9.8.3', '10.9.8.4', '10.9.8.5', '10.9.8.6']);
    assert.deepEqual([...guestAddresses(l, '10.9.8.4')], ['10.9.8.5', '10.9.8.6', '10.9.8.2', '10.9.8.3', '10.9.8.4']);
  });

  it('refuses bad names, subnets and overlapping link networks, naming the field', () => {
    assert.throws(() => layoutFor({ ...DEFAULT_NETWORK, bridge: 'a-very-long-bridge-name' }), /bridge/);
    assert.throws(() => layoutFor({ ...DEFAULT_NETWORK, subnet: '172.30.0.0/31' }), /prefix/);
    assert.throws(() => layoutFor({ ...DEFAULT_NETWORK, subnet: '300.1.1.0/24' }), /not an IPv4 address/);
    assert.throws(() => layoutFor({ ...DEFAULT_NETWORK, subnet: '172.30.0.0/16' }), /overlaps/);
  });

  it('computes CIDR membership', () => {
    const c = parseCidr('192.168.4.77/22');
    assert.equal(nth(c, 0), '192.168.4.0');
    assert.ok(contains(c, '192.168.7.255'));
    assert.ok(!contains(c, '192.168.8.0'));
  });

  it('gives every address a stable MAC that embeds it', () => {
    assert.equal(macForIp('172.30.0.5'), '52:55:ac:1e:00:05');
  });

  it('firewall: drop by default, guests reach each other, the host only for DNS and allowed ports', () => {
    const rules = firewallRules({ netns: 'n', bridge: 'br', uplink: 'br-n', hostAddress: '10.0.0.1', allowHostPorts: [8125] });
    assert.match(rules, /chain forward \{\n\s+type filter hook forward priority filter; policy drop;/);
    assert.match(rules, /iifname "br" oifname "br" accept/);
    assert.match(rules, /iifname "br-n" oifname "br" accept/);
    assert.match(rules, /iifname "br" ip daddr 10\.0\.0\.1 udp dport 53 accept/);
    assert.match(rules, /tcp dport \{ 8125 \} accept/);
    assert.doesNotMatch(firewallRules({ netns: 'n', bridge: 'br', uplink: 'br-n', hostAddress: '10.0.0.1', allowHostPorts: [] }), /dport \{/);
  });
});
