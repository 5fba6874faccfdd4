import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { addGuardScript, GUARD_TABLE, guardChain, guardRules, guardTableScript, removeGuardScript, type TapIdentity } from '../../src/network/tap-guard.js';

const a: TapIdentity = { tap: 'vt0123456789ab', mac: '52:55:AC:1D:00:02', ip: '172.29.0.2' };
const b: TapIdentity = { tap: 'vtffffffffffff', mac: '52:55:ac:1d:00:03', ip: '172.29.0.3' };

/** `nft -c` parses and checks a script against the kernel without applying it (root only). */
function nftAccepts(script: string): void {
  if (process.getuid?.() !== 0) return;
  const r = spawnSync('nft', ['-c', '-f', '-'], { input: script, encoding: 'utf8' });
  if (r.error) return;
  assert.equal(r.status, 0, `${r.stderr}\n${script}`);
}

describe('tap guard (anti-spoofing on the bridge)', () => {
  it("a tap's chain: its MAC on every frame, then only IPv4 from its address, ARP as itself, RARP; nothing else", () => {
    assert.deepEqual(guardRules(a), [
      'ether saddr != 52:55:ac:1d:00:02 drop',
      'ether type ip ip saddr 172.29.0.2 accept',
      'ether type arp arp htype 1 arp ptype ip arp hlen 6 arp plen 4 arp saddr ether 52:55:ac:1d:00:02 arp saddr ip 172.29.0.2 accept',
      'ether type 0x8035 accept',
      'drop',
    ]);
    // The last rule drops: a frame no earlier rule accepted (IPv6, VLAN, another source
    // IP, ARP claiming another address) never reaches the bridge.
    assert.equal(guardRules(b).at(-1), 'drop');
    assert.equal(guardRules(b).filter((r) => r.endsWith('accept')).length, 3);
  });

  it('the table: a verdict map by tap name, and a drop for any tap of the prefix without a guard', () => {
    const script = guardTableScript('vt', [a, b]);
    // Replaces an older copy of itself in the same transaction.
    assert.match(script, new RegExp(`^table bridge ${GUARD_TABLE}\\ndelete table bridge ${GUARD_TABLE}\\ntable bridge ${GUARD_TABLE} \\{\\n`));
    const pre = /chain prerouting \{\n([\s\S]*?)\n\s*\}/.exec(script)![1]!.split('\n').map((l) => l.trim());
    assert.deepEqual(pre, ['type filter hook prerouting priority filter; policy accept;', 'iifname vmap @taps', 'iifname "vt*" drop']);
    for (const g of [a, b]) {
      assert.ok(script.includes(`add element bridge ${GUARD_TABLE} taps { "${g.tap}" : goto ${guardChain(g.tap)} }`), script);
      for (const r of guardRules(g)) assert.ok(script.includes(`add rule bridge ${GUARD_TABLE} ${guardChain(g.tap)} ${r}\n`), r);
    }
    nftAccepts(script);
    nftAccepts(guardTableScript('vt', []));
  });

  it("adding a guard replaces the tap's rules (flush first); removing one works whether or not it is there", () => {
    const add = addGuardScript(a).split('\n');
    assert.deepEqual(add.slice(0, 2), [`add chain bridge ${GUARD_TABLE} guard_${a.tap}`, `flush chain bridge ${GUARD_TABLE} guard_${a.tap}`]);
    assert.equal(add.filter((l) => l.startsWith('add element')).length, 1);
    const rm = removeGuardScript(a.tap).trim().split('\n');
    assert.deepEqual(rm.slice(2), [`delete element bridge ${GUARD_TABLE} taps { "${a.tap}" }`, `delete chain bridge ${GUARD_TABLE} guard_${a.tap}`]);
    nftAccepts(guardTableScript('vt', []) + addGuardScript(a) + removeGuardScript(a.tap) + removeGuardScript(b.tap));
  });

  it('refuses names and addresses that would change the script', () => {
    assert.throws(() => guardRules({ ...a, ip: '172.29.0.2 accept' }), /bad IPv4/);
    assert.throws(() => guardRules({ ...a, ip: '172.29.0.256' }), /bad IPv4/);
    assert.throws(() => guardRules({ ...a, mac: '52:55:ac:1d:00' }), /bad MAC/);
    assert.throws(() => addGuardScript({ ...a, tap: 'vt" } ; flush ruleset ; {' }), /bad interface name/);
    assert.throws(() => addGuardScript({ ...a, tap: 'vt0123456789abcd' }), /bad interface name/);
    assert.throws(() => removeGuardScript('a b'), /bad interface name/);
    assert.throws(() => guardTableScript('vt"*', []), /bad tap prefix/);
  });
});
