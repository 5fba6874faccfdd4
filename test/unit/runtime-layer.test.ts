import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseLdd } from '../../src/images/runtime-layer.js';

describe('ldd parsing', () => {
  it('takes resolved paths and the loader, skips the vDSO', () => {
    const out = `\tlinux-vdso.so.1 (0x00007ffd)\n\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f)\n\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n`;
    assert.deepEqual(parseLdd(out), ['/lib/x86_64-linux-gnu/libdl.so.2', '/lib/x86_64-linux-gnu/libstdc++.so.6', '/lib64/ld-linux-x86-64.so.2']);
  });
});
