import { readFile, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UigniterError } from '../core/errors.js';
import { run } from '../util/exec.js';
import { writeFileAtomic } from '../util/fs.js';
import { sha256, sha256File } from '../util/hash.js';
import { packageRoot } from '../util/package-root.js';
import { digestTree, type TreeEntry } from './file-tree.js';
import type { Layer, LayerStore } from './layer-store.js';

export interface Runtime {
  kind: 'node';
  version: string;
  layer: Layer;
}

/** Parses `ldd` output into the absolute paths the loader will open. */
export function parseLdd(output: string): string[] {
  const paths = new Set<string>();
  for (const line of output.split('\n')) {
    const arrow = /=>\s+(\/\S+)/.exec(line);
    const bare = /^\s*(\/\S+)\s+\(0x/.exec(line);
    const p = arrow?.[1] ?? bare?.[1];
    if (p) paths.add(p);
  }
  return [...paths].sort();
}

/**
 * The V8 flags every Node app runs with (they go in the image's entrypoint, after node).
 *
 * --no-memory-reducer: V8's memory reducer runs a compacting GC about 8 s after the heap
 * last grew, to give pages back. In a guest those pages stay the guest's (no free page
 * reporting here, see docs/architecture.md "Dense fleets"), so the GC only costs. A
 * template is saved when its app is ready, with that timer still armed, so every clone ran
 * the GC a few seconds after its restore. Measured here (hello app, 128 MiB, 16 clones
 * idle 10 s): PSS per clone 47.7 -> 37.0 MiB; CPU per clone from the POST to idle
 * 520-630 -> 260-300 ms (the GC code, translated by TCG anew in every QEMU, and the heap
 * pages it moves, copied on write from the template's memory).
 */
export const NODE_V8_FLAGS: readonly string[] = ['--no-memory-reducer'];

/** Where the guest init looks for the clone hooks (guest/init/init.c, start_app). */
const NODE_HOOKS_PATH = 'usr/lib/uigniter/node-clone-hooks.cjs';

/** The hooks' source in this checkout or package. */
export function nodeHooksSource(): string {
  return join(packageRoot(), 'guest', 'runtime', 'node-clone-hooks.cjs');
}

/**
 * What names one node runtime layer without hashing the 100 MB binary on every image build:
 * the binary's and each library's real path, size and mtime, and the hooks' content hash
 * (editing them makes a new layer). Not ldd's raw output: it prints load addresses, which
 * ASLR changes on every call (measured: every image build missed its index and hashed node).
 */
export async function nodeRuntimeFingerprint(real: string, libs: readonly { path: string; target: string }[], hooks: string): Promise<string> {
  const parts: string[] = [];
  for (const { path, target } of [{ path: real, target: real }, ...libs]) {
    const st = await stat(target);
    parts.push(`${path} ${target} ${st.size} ${st.mtimeMs}`);
  }
  parts.push(await sha256File(hooks));
  return sha256(parts.join('\n')).slice(0, 24);
}

/**
 * The Node.js runtime layer: the host's node binary at /usr/bin/node plus the shared
 * libraries ldd names, at the paths the loader expects. Measured here: that is all a
 * guest needs to run node. Built once per node binary (and version of our clone hooks,
 * guest/runtime/node-clone-hooks.cjs, which the guest preloads into the app) and shared
 * by every node image.
 */
export async function ensureNodeRuntime(layers: LayerStore, cacheDir: string, nodePath = process.execPath): Promise<Runtime> {
  const real = await realpath(nodePath);
  const ldd = await run('ldd', [real]).catch((e: unknown) => {
    throw new UigniterError('failed_precondition', `cannot list the libraries of ${real}: ${String(e)}`);
  });
  // Each library at the path the loader opens, and the file it resolves to.
  const libs = await Promise.all(parseLdd(ldd.stdout).map(async (path) => ({ path, target: await realpath(path) })));
  const version = (await run(real, ['--version'])).stdout.trim();
  const hooks = nodeHooksSource();
  const fingerprint = await nodeRuntimeFingerprint(real, libs, hooks);
  const index = join(cacheDir, 'runtime', `node-${fingerprint}.json`);
  const known = await readFile(index, 'utf8').then((t) => JSON.parse(t) as { digest: string }).catch(() => null);

  const entries: TreeEntry[] = [
    { path: 'usr/bin/node', kind: 'file', source: real, mode: 0o755 },
    { path: 'usr/local/bin/node', kind: 'symlink', target: '/usr/bin/node' },
    { path: NODE_HOOKS_PATH, kind: 'file', source: hooks, mode: 0o644 },
  ];
  for (const lib of libs) entries.push({ path: lib.path.slice(1), kind: 'file', source: lib.target, mode: 0o755 });
  const digest = known?.digest ?? (await digestTree(entries));
  const layer = await layers.ensure(entries, digest);
  if (!known) await writeFileAtomic(index, JSON.stringify({ digest, node: real, version }));
  return { kind: 'node', version, layer };
}
