import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fieldOf } from '../../src/api/error-handler.js';
import { fromLegacyBody, splitCmdline } from '../../src/api/legacy-body.js';

describe('API helpers', () => {
  it('splits a command line like a shell would, without expanding anything', () => {
    assert.deepEqual(splitCmdline(`a "b c" 'd e' f\\ g "" $HOME *`), ['a', 'b c', 'd e', 'f g', '', '$HOME', '*']);
    assert.deepEqual(splitCmdline('  '), []);
    assert.throws(() => splitCmdline('"open'), /unterminated quote/);
  });

  it("maps the original Uigniter's body to ours", () => {
    assert.deepEqual(fromLegacyBody({ image_name: 'app', cmdline: '/app/x.js --v', read_only: true }), { image: 'app', args: ['/app/x.js', '--v'], readOnly: true });
    assert.deepEqual(fromLegacyBody({ image_name: 'app', read_only: false }), { image: 'app' });
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
