import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UigniterError } from '../../src/core/errors.js';
import type { ImageManifest, VmSpec } from '../../src/core/models.js';
import { templateKey } from '../../src/core/snapshots/template-key.js';
import { serviceSpecFrom } from '../../src/core/services/service-spec.js';
import { cloneSpec, codeCacheOf, specFromRequest } from '../../src/core/vm-request.js';

const image = {
  name: 'app',
  tag: 'latest',
  digest: 'sha256:aa',
  kernel: { id: 'k1' },
  initrd: { id: 'i1' },
  layers: [{ id: 'l1', role: 'app', size: 1 }, { id: 'l2', role: 'runtime', size: 1 }],
  vcpus: 1,
  memMiB: 128,
  minMemMiB: 64,
} as unknown as ImageManifest;
const qemu = { name: 'qemu', maxDisks: 5 };
const field = (f: string) => (e: unknown) => e instanceof UigniterError && e.code === 'invalid_argument' && e.field === f;

describe('VM specs from requests', () => {
  it('checks the disks a VM needs against its driver when the spec is built', () => {
    const two = [{ name: 'a', mountPath: '/a' }, { name: 'b', mountPath: '/b' }];
    assert.equal(specFromRequest({ image: 'app', volumes: two }, image, 'x', qemu).volumes.length, 2, '2 layers + 2 volumes + config drive = 5 fit');
    assert.throws(() => specFromRequest({ image: 'app', volumes: [...two, { name: 'c', mountPath: '/c' }] }, image, 'x', qemu), field('volumes'));
    assert.equal(specFromRequest({ image: 'app' }, image, 'x', qemu).driver, 'qemu');
  });

  it('a read-only root is in the spec only when asked for, and must be a boolean', () => {
    assert.equal(specFromRequest({ image: 'app', readOnly: true }, image, 'x', qemu).readOnly, true);
    assert.ok(!('readOnly' in specFromRequest({ image: 'app', readOnly: false }, image, 'x', qemu)));
    assert.ok(!('readOnly' in specFromRequest({ image: 'app' }, image, 'x', qemu)));
    // The API's schema refuses it first; the core checks too, for callers without a schema.
    assert.throws(() => specFromRequest({ image: 'app', readOnly: 'yes' as unknown as boolean }, image, 'x', qemu), field('readOnly'));
    const from = specFromRequest({ image: 'app', readOnly: true }, image, 'src', qemu);
    assert.equal(cloneSpec({ snapshot: 's' }, from, 'c1').readOnly, true, "a clone keeps its snapshot's read-only root");
  });

  it("a clone takes the snapshot's spec and refuses what its memory already holds", () => {
    const from: VmSpec = { ...specFromRequest({ image: 'app', env: { A: '1' } }, image, 'src', qemu), stopTimeoutMs: 3000 };
    const c = cloneSpec({ snapshot: 's', name: 'c1', ports: [{ hostPort: 9000, guestPort: 80 }] }, from, 'c1');
    assert.equal(c.name, 'c1');
    assert.deepEqual(c.env, { A: '1' });
    assert.equal(c.stopTimeoutMs, 3000);
    assert.equal(c.ports[0]!.hostAddr, '127.0.0.1');
    for (const f of ['image', 'vcpus', 'memMiB', 'env', 'args', 'volumes', 'boot', 'driver', 'readOnly'] as const) {
      const req = { snapshot: 's', [f]: f === 'env' ? {} : f === 'args' || f === 'volumes' ? [] : f === 'vcpus' || f === 'memMiB' ? 1 : f === 'readOnly' ? true : 'x' };
      assert.throws(() => cloneSpec(req, from, 'c1'), field(f), `${f} is refused for a clone`);
    }
  });

  it('a code cache is in the spec only when asked for, within 16-1024 MiB; a clone may ask for its own', () => {
    assert.equal(specFromRequest({ image: 'app', codeCacheMiB: 64 }, image, 'x', qemu).codeCacheMiB, 64);
    assert.ok(!('codeCacheMiB' in specFromRequest({ image: 'app' }, image, 'x', qemu)));
    for (const bad of [8, 2048, 48.5, '64' as unknown as number]) {
      assert.throws(() => specFromRequest({ image: 'app', codeCacheMiB: bad }, image, 'x', qemu), field('codeCacheMiB'), `refuses ${String(bad)}`);
    }
    const from = specFromRequest({ image: 'app', codeCacheMiB: 64 }, image, 'src', qemu);
    assert.equal(cloneSpec({ snapshot: 's' }, from, 'c1').codeCacheMiB, 64, "a clone keeps its snapshot's");
    assert.equal(cloneSpec({ snapshot: 's', codeCacheMiB: 128 }, from, 'c1').codeCacheMiB, 128, 'the cache is the new VMM\'s: a clone may size its own');
    assert.throws(() => cloneSpec({ snapshot: 's', codeCacheMiB: 4 }, from, 'c1'), field('codeCacheMiB'));
    // A service's replicas (and its pool's spares) carry the cache the service asks for.
    const svc = { name: 'busy', image: 'app', replicas: { min: 0, max: 2 } };
    assert.equal(serviceSpecFrom({ ...svc, codeCacheMiB: 128 }, image, qemu).vm.codeCacheMiB, 128);
    assert.ok(!('codeCacheMiB' in serviceSpecFrom(svc, image, qemu).vm));
    assert.throws(() => serviceSpecFrom({ ...svc, codeCacheMiB: 2000 }, image, qemu), field('codeCacheMiB'));
    assert.deepEqual(codeCacheOf(from), { codeCacheMiB: 64 });
    assert.deepEqual(codeCacheOf(specFromRequest({ image: 'app' }, image, 'x', qemu)), {});
  });

  it('a template key changes with everything that shapes a booted VM, and only that', () => {
    const base = specFromRequest({ image: 'app', env: { A: '1', B: '2' } }, image, 'one', qemu);
    const k = templateKey(image, base);
    assert.equal(templateKey(image, { ...base, name: 'two', ports: [{ hostPort: 1, guestPort: 2, hostAddr: '127.0.0.1', protocol: 'tcp' }], stopTimeoutMs: 1 }), k, 'name, ports and stop timeout are the clone\'s own');
    assert.equal(templateKey(image, { ...base, env: { B: '2', A: '1' } }), k, 'env order does not matter');
    assert.equal(templateKey(image, { ...base, readOnly: false }), k, 'a writable root is the default: keys made before readOnly existed stay');
    assert.equal(templateKey(image, { ...base, codeCacheMiB: 128 }), k, "the code cache is the VMM's, not the guest's");
    for (const changed of [{ ...base, env: { A: '1' } }, { ...base, args: ['x'] }, { ...base, vcpus: 2 }, { ...base, memMiB: 256 }, { ...base, driver: 'other' }, { ...base, readOnly: true }]) {
      assert.notEqual(templateKey(image, changed), k);
    }
    assert.notEqual(templateKey({ ...image, digest: 'sha256:bb' }, base), k, 'a rebuilt image');
    assert.notEqual(templateKey({ ...image, kernel: { id: 'k2' } }, base), k, 'another kernel');
  });
});
