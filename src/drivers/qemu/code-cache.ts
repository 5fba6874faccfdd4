import { readFile } from 'node:fs/promises';

/**
 * TCG's translation cache in a running QEMU, read from /proc/PID/smaps. QEMU 7.2 maps the
 * cache once, at start, as one anonymous read-write-execute mapping of `tb-size` MiB, and
 * fills it as the guest runs code it has not run before: so the cache's resident size is
 * what it holds now, and the rest of the mapping is what it may still take without anyone
 * asking (a clone's cache held 14 MiB at its create and 24 MiB 31 min later).
 */

/** `-accel tcg,tb-size=N` in a QEMU command line: N MiB; null for KVM (no translation cache). */
export function codeCacheBoundMiB(argv: readonly string[]): number | null {
  const i = argv.indexOf('-accel');
  const accel = i >= 0 ? argv[i + 1] : undefined;
  if (!accel?.startsWith('tcg')) return null;
  const size = /(?:^|,)tb-size=(\d+)(?:,|$)/.exec(accel);
  // Without tb-size QEMU 7.2 reserves 1 GiB; every VM we launch names its size.
  return size ? Number(size[1]) : 1024;
}

/**
 * The resident KiB of the translation cache in a smaps text: the anonymous `rwxp` mapping
 * of the bound's size (QEMU 7.2 maps one page less: 32764 kB for 32 MiB). Null when there
 * is no such mapping (a layout this parser does not know: the caller then counts the whole
 * bound as still to come).
 */
export function codeCacheResidentKiB(smaps: string, boundMiB: number): number | null {
  const want = boundMiB * 1024;
  const fits = (kb: number): boolean => kb <= want && kb > want - 1024;
  let candidate = false;
  let size = -1;
  for (const line of smaps.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ (\S{4}) \S+ \S+ (\d+)\s*(\S*)/.exec(line);
    if (head) {
      // Anonymous: inode 0 and no path.
      candidate = head[1] === 'rwxp' && head[2] === '0' && head[3] === '';
      size = -1;
      continue;
    }
    if (!candidate) continue;
    const field = /^(Size|Rss):\s+(\d+) kB$/.exec(line);
    if (field?.[1] === 'Size') size = Number(field[2]);
    else if (field?.[1] === 'Rss' && fits(size)) return Number(field[2]);
  }
  return null;
}

/** What QEMU's `info jit` says of the translation cache. */
export interface JitInfo {
  /** Bytes of translated code the cache holds now. */
  usedBytes: number;
  /** Bytes the cache may hold. */
  sizeBytes: number;
  /** Times the cache filled up and was emptied since QEMU started (each one retranslates everything the guest runs). */
  flushes: number;
}

/**
 * Parses `info jit` (QEMU 7.2: "gen code size       USED/SIZE" and "TB flush count      N");
 * null when either line is missing (KVM prints no translation statistics).
 */
export function parseInfoJit(text: string): JitInfo | null {
  const size = /^gen code size\s+(\d+)\/(\d+)\s*$/m.exec(text);
  const flushes = /^TB flush count\s+(\d+)\s*$/m.exec(text);
  if (!size || !flushes) return null;
  return { usedBytes: Number(size[1]), sizeBytes: Number(size[2]), flushes: Number(flushes[1]) };
}

/**
 * Bytes the QEMU process `pid` may still add to its translation cache: the bound minus what
 * the cache holds now (the whole bound when the cache is not found); null when the process
 * is gone.
 */
export async function codeCacheRoomBytes(pid: number, boundMiB: number): Promise<number | null> {
  const smaps = await readFile(`/proc/${pid}/smaps`, 'utf8').catch(() => null);
  if (smaps === null) return null;
  const resident = codeCacheResidentKiB(smaps, boundMiB);
  return Math.max(0, boundMiB * 1024 - (resident ?? 0)) * 1024;
}
