import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeHooksSource, nodeRuntimeFingerprint, parseLdd } from '../../src/images/runtime-layer.js';
import { run } from '../../src/util/exec.js';

describe('ldd parsing', () => {
  it('takes resolved paths and the loader, skips the vDSO', () => {
    const out = `\tlinux-vdso.so.1 (0x00007ffd)\n\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f)\n\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n`;
    assert.deepEqual(parseLdd(out), ['/lib/x86_64-linux-gnu/libdl.so.2', '/lib/x86_64-linux-gnu/libstdc++.so.6', '/lib64/ld-linux-x86-64.so.2']);
  });
});

describe("the node runtime's fingerprint", () => {
  it('is the same on every call: ldd prints load addresses that ASLR moves, the fingerprint must not follow them', async () => {
    const real = await realpath(process.execPath);
    const prints = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const ldd = await run('ldd', [real]);
      const libs = await Promise.all(parseLdd(ldd.stdout).map(async (path) => ({ path, target: await realpath(path) })));
      prints.add(await nodeRuntimeFingerprint(real, libs, nodeHooksSource()));
    }
    assert.equal(prints.size, 1);
  });

  it('changes when a library it names changes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'uigniter-fp-'));
    try {
      const lib = join(dir, 'libx.so');
      await writeFile(lib, 'one');
      const real = await realpath(process.execPath);
      const before = await nodeRuntimeFingerprint(real, [{ path: lib, target: lib }], nodeHooksSource());
      await writeFile(lib, 'two, longer');
      assert.notEqual(await nodeRuntimeFingerprint(real, [{ path: lib, target: lib }], nodeHooksSource()), before);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
