import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { codeCacheBoundMiB, codeCacheResidentKiB, parseInfoJit } from '../../src/drivers/qemu/code-cache.js';

/** One mapping of /proc/PID/smaps as Linux 6 writes it (the fields we read, and some we do not). */
function mapping(head: string, sizeKb: number, rssKb: number): string {
  return [head, `Size:           ${String(sizeKb).padStart(6)} kB`, 'KernelPageSize:        4 kB', `Rss:            ${String(rssKb).padStart(6)} kB`, `Pss:            ${String(rssKb).padStart(6)} kB`, 'VmFlags: rd wr ex mr mw me ac hg'].join('\n');
}

describe("TCG's translation cache in smaps", () => {
  // A QEMU 7.2 under TCG: a guard region, the kernel it loaded, the guest's RAM file, the
  // cache (32 MiB less one page, anonymous, read-write-execute), and a thread arena.
  const smaps = [
    mapping('7f6a80035000-7f6a84000000 ---p 00000000 00:00 0 ', 65324, 0),
    mapping('7f6aa0a00000-7f6aa1e3b000 rw-p 00000000 fe:00 1534177                    /var/lib/uigniter/cache/kernels/4a59/vmlinux', 20716, 14208),
    mapping('7f6aa1fff000-7f6aadfff000 rw-s 00000000 00:1b 2510                       /dev/shm/uigniter-81ed/cf99.ram', 196608, 93760),
    mapping('7f6aae000000-7f6aaffff000 rwxp 00000000 00:00 0 ', 32764, 14336),
    mapping('7f6ab0021000-7f6ab4000000 rw-p 00000000 00:00 0 ', 65404, 132),
  ].join('\n');

  it('finds the anonymous rwx mapping of the bound and reads what it holds', () => {
    assert.equal(codeCacheResidentKiB(smaps, 32), 14336);
  });

  it('finds nothing where no rwx mapping has the bound: not a file mapping, not another size', () => {
    assert.equal(codeCacheResidentKiB(smaps, 64), null);
    const fileBacked = mapping('7f6aae000000-7f6aaffff000 rwxp 00000000 fe:00 77 /usr/lib/jit.so', 32764, 100);
    assert.equal(codeCacheResidentKiB(fileBacked, 32), null);
    const readOnly = mapping('7f6aae000000-7f6aaffff000 r-xp 00000000 00:00 0 ', 32764, 100);
    assert.equal(codeCacheResidentKiB(readOnly, 32), null);
  });

  it('takes the bound from the command line: tb-size under TCG, none under KVM', () => {
    assert.equal(codeCacheBoundMiB(['qemu-system-x86_64', '-M', 'microvm', '-accel', 'tcg,tb-size=32', '-cpu', 'max']), 32);
    assert.equal(codeCacheBoundMiB(['qemu-system-x86_64', '-accel', 'tcg,thread=single,tb-size=48']), 48);
    // QEMU 7.2's own default when the size is not named.
    assert.equal(codeCacheBoundMiB(['qemu-system-x86_64', '-accel', 'tcg']), 1024);
    assert.equal(codeCacheBoundMiB(['qemu-system-x86_64', '-accel', 'kvm', '-cpu', 'host']), null);
  });
});

describe("QEMU's info jit", () => {
  // QEMU 7.2's output under TCG (a guest that filled a 16 MiB cache twice), abridged only
  // of its histogram lines.
  const tcg = [
    'Translation buffer state:',
    'gen code size       9437184/16773120',
    'TB count            41870',
    'TB avg target size  18 max=1864 bytes',
    'TB avg host size    225 bytes (expansion ratio: 12.2)',
    'cross page TB count 130 (0%)',
    '',
    'Statistics:',
    'TB flush count      2',
    'TB invalidate count 3310',
    'TLB full flushes    0',
    '[TCG profiler not compiled]',
  ].join('\n');

  it('reads the code held, the size and the flush count', () => {
    assert.deepEqual(parseInfoJit(tcg), { usedBytes: 9437184, sizeBytes: 16773120, flushes: 2 });
  });

  it('is null when a line is missing (KVM has no translation statistics) or malformed', () => {
    assert.equal(parseInfoJit(''), null);
    assert.equal(parseInfoJit(tcg.replace(/^TB flush count.*$/m, '')), null);
    assert.equal(parseInfoJit(tcg.replace('9437184/16773120', '9437184')), null);
  });
});
