import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CONFIG_MAGIC, decodeToken, encodeToken, renderConfig, type GuestConfig } from '../../src/guest/config-drive.js';

const base: GuestConfig = {
  hostname: 'web-1',
  argv: ['/usr/bin/node', '/app/server.js'],
  env: {},
  workdir: '/app',
  layers: ['sha256:aa', 'sha256:bb'],
  volumes: [],
  hosts: [],
  dns: ['172.30.255.253'],
  search: 'uigniter.internal',
  ready: { kind: 'http', port: 8080, path: '/healthz' },
  stopTimeoutMs: 10000,
  time: 1800000000.5,
};

describe('config drive encoding', () => {
  it('round-trips any string without NUL, including separators and non-ASCII', () => {
    for (const s of ['plain', 'two words', 'a\nb', '100%', 'x=y=z', 'tab\there', 'ünïcødé ✓', "quote'\"`$(rm -rf /)"]) {
      const token = encodeToken(s);
      assert.match(token, /^[A-Za-z0-9._~/:=@+,%-]+$/, `token of ${JSON.stringify(s)} has no separators`);
      assert.equal(decodeToken(token), s);
    }
  });

  it('refuses NUL, which a process environment cannot hold', () => {
    assert.throws(() => encodeToken('a\0b'), /NUL/);
  });

  it('renders one line per setting, starting with the magic the init looks for', () => {
    const text = renderConfig({ ...base, env: { GREETING: 'hi there' }, argv: ['/usr/bin/node', '/app/s.js', 'a b'] });
    const lines = text.split('\n');
    assert.equal(lines[0], CONFIG_MAGIC);
    assert.ok(lines.includes('env GREETING=hi%20there'));
    assert.ok(lines.includes('arg a%20b'));
    assert.ok(lines.includes('layer sha256:aa'));
    assert.ok(lines.includes('ready http 8080 /healthz'));
    assert.ok(lines.includes('time 1800000000'));
    assert.equal(lines.at(-2), 'end');
  });

  it('names the app hooks only when the image has them', () => {
    assert.ok(renderConfig({ ...base, appHooks: 'node' }).split('\n').includes('app-hooks node'));
    assert.ok(!renderConfig({ ...base, appHooks: null }).includes('app-hooks'));
    assert.ok(!renderConfig(base).includes('app-hooks'));
  });

  it('asks for a read-only root only when the VM has one', () => {
    assert.ok(renderConfig({ ...base, rootReadOnly: true }).split('\n').includes('root ro'));
    assert.ok(!renderConfig({ ...base, rootReadOnly: false }).includes('root '));
    assert.ok(!renderConfig(base).includes('root '));
  });

  it('writes volume UUIDs as 32 lowercase hex digits', () => {
    const text = renderConfig({ ...base, volumes: [{ uuid: 'AB6C2E1A-0000-4000-8000-0123456789AB', mountPath: '/data', readOnly: false }] });
    assert.ok(text.includes('volume ab6c2e1a0000400080000123456789ab /data rw'));
  });
});
