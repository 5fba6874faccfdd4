import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fieldOf } from '../../src/api/error-handler.js';
import { fromLegacyBody, programNames, splitCmdline } from '../../src/api/legacy-body.js';

describe('API helpers', () => {
  it('splits a command line like a shell would, without expanding anything', () => {
    assert.deepEqual(splitCmdline(`a "b c" 'd e' f\\ g "" $HOME *`), ['a', 'b c', 'd e', 'f g', '', '$HOME', '*']);
    assert.deepEqual(splitCmdline('  '), []);
    assert.throws(() => splitCmdline('"open'), /unterminated quote/);
  });

  it("maps the original Uigniter's body to ours", () => {
    assert.deepEqual(fromLegacyBody({ image_name: 'app', cmdline: '/app/x.js --v', read_only: true }), { image: 'app', args: ['/app/x.js', '--v'], readOnly: true });
    assert.deepEqual(fromLegacyBody({ image_name: 'app', read_only: false }), { image: 'app' });
    // The original's cmdline named the program first (OSv ran it whole): a first word naming
    // the image or its entry point is dropped; any other first word is an argument.
    const program = programNames({ name: 'curl', entrypoint: ['/usr/bin/node', '--no-memory-reducer', '/app/curl.js'] });
    assert.deepEqual([...program].sort(), ['/app/curl.js', '/usr/bin/node', 'curl', 'curl.js', 'node']);
    for (const first of ['curl', 'node', '/usr/bin/node', 'curl.js', '/app/curl.js']) {
      assert.deepEqual(fromLegacyBody({ image_name: 'curl', cmdline: `${first} -s http://x` }, program).args, ['-s', 'http://x'], first);
    }
    assert.deepEqual(fromLegacyBody({ image_name: 'curl', cmdline: '-s http://x' }, program).args, ['-s', 'http://x'], 'no program word: all are arguments');
    assert.deepEqual(fromLegacyBody({ image_name: 'curl', cmdline: 'curl' }, program).args, [], 'the program alone: no arguments');
    assert.deepEqual(fromLegacyBody({ image_name: 'app' }), { image: 'app' });
    assert.throws(() => fromLegacyBody({ image_name: 'app', read_only: 'yes' }), /read_only must be a boolean/);
    assert.throws(() => fromLegacyBody({ image_name: 'app', extra: 1 }), /unknown field 'extra'/);
    assert.throws(() => fromLegacyBody({ image_name: 5 }), /image_name/);
  });

  it('names the field of a schema error', () => {
    assert.equal(fieldOf('body', { instancePath: '/ports/0/hostPort', keyword: 'maximum' }), 'ports[0].hostPort');
    assert.equal(fieldOf('body', { instancePath: '', keyword: 'required', params: { missingProperty: 'image' } }), 'image');
    assert.equal(fieldOf('body', { instancePath: '/volumes/1', keyword: 'additionalProperties', params: { additionalProperty: 'x' } }), 'volumes[1].x');
    assert.equal(fieldOf('querystring', { instancePath: '', keyword: 'type' }), 'querystring');
  });
});
