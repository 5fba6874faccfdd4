import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UigniterError } from '../../src/core/errors.js';
import { parseImageRef } from '../../src/images/image-ref.js';

describe('image references', () => {
  it('defaults the tag to latest', () => {
    assert.deepEqual(parseImageRef('hello'), { name: 'hello', tag: 'latest' });
    assert.deepEqual(parseImageRef('db:v1.2'), { name: 'db', tag: 'v1.2' });
  });

  for (const bad of ['a/b', '../etc', 'a..b', '', 'Upper', '-lead', 'x:', 'x:a/b', `${'a'.repeat(64)}`]) {
    it(`refuses ${JSON.stringify(bad)} with a field-named 400`, () => {
      assert.throws(
        () => parseImageRef(bad),
        (e: unknown) => e instanceof UigniterError && e.code === 'invalid_argument' && e.field === 'image',
      );
    });
  }
});
