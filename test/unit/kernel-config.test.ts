import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { defaultFragmentPath, missingOptions } from '../../src/images/kernel-builder.js';

describe('kernel fragment checks', () => {
  it('finds options that olddefconfig dropped, both set and unset ones', () => {
    const fragment = 'CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=16\n# a comment\n';
    assert.deepEqual(missingOptions(fragment, 'CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=16\n'), []);
    assert.deepEqual(missingOptions(fragment, 'CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=8\n'), ['# CONFIG_B is not set', 'CONFIG_C=16']);
    assert.deepEqual(missingOptions(fragment, 'CONFIG_C=16\n'), ['CONFIG_A=y']);
  });

  it('our fragment asks for what both VMMs need: PVH, virtio-mmio from the command line, no modules', async () => {
    const fragment = await readFile(defaultFragmentPath(), 'utf8');
    for (const opt of ['CONFIG_PVH=y', 'CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y', 'CONFIG_VIRTIO_BLK=y', 'CONFIG_VIRTIO_NET=y', 'CONFIG_SERIAL_8250_CONSOLE=y', 'CONFIG_SERIO_I8042=y', 'CONFIG_KEYBOARD_ATKBD=y', 'CONFIG_SQUASHFS=y', 'CONFIG_OVERLAY_FS=y', 'CONFIG_EXT4_FS=y', 'CONFIG_IP_PNP=y']) {
      assert.ok(fragment.includes(`${opt}\n`), opt);
    }
    assert.doesNotMatch(fragment, /^CONFIG_MODULES=y/m);
  });
});
