import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { invalid } from '../core/errors.js';
import { exists } from '../util/fs.js';
import type { AppDir, PackageJson } from './app-config.js';
import type { TreeEntry } from './file-tree.js';

/** Never packed from an app directory. */
const SKIP_IN_APP = new Set(['node_modules', '.git', '.uigniter']);

async function walk(
  src: string,
  dest: string,
  out: TreeEntry[],
  skip: (rel: string, name: string) => boolean,
  rel = '',
  seen = new Set<string>(),
): Promise<void> {
  const real = await realpath(src);
  if (seen.has(real)) return; // symlink loop
  seen.add(real);
  for (const name of (await readdir(src)).sort()) {
    const childRel = rel ? `${rel}/${name}` : name;
    if (skip(childRel, name)) continue;
    const path = join(src, name);
    const l = await lstat(path);
    // Symlinks are followed: a layer must not point outside itself.
    const st = l.isSymbolicLink() ? await stat(path).catch(() => null) : l;
    if (!st) continue; // dangling link
    if (st.isDirectory()) {
      out.push({ path: `${dest}/${childRel}`, kind: 'dir', mode: 0o755 });
      await walk(path, dest, out, skip, childRel, seen);
    } else if (st.isFile()) {
      out.push({ path: `${dest}/${childRel}`, kind: 'file', source: path, mode: st.mode & 0o111 ? 0o755 : 0o644 });
    }
  }
  seen.delete(real);
}

/** Node's lookup: <dir>/node_modules/<name>, then each parent directory's. */
async function resolvePackage(name: string, fromDir: string): Promise<string | null> {
  let dir = fromDir;
  for (;;) {
    const candidate = join(dir, 'node_modules', name);
    if (await exists(join(candidate, 'package.json'))) return realpath(candidate);
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

async function readPkg(dir: string): Promise<PackageJson> {
  return JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as PackageJson;
}

interface Placement {
  realDir: string;
  slot: string; // e.g. "node_modules/a/node_modules/b", relative to the app root
}

/**
 * The production dependency closure of an app, laid out so Node's own lookup finds each
 * package from its new place: hoisted to the top node_modules unless a different version
 * already sits there, then nested under the package that needs it. Workspace links and
 * hoisted monorepo installs are resolved the way Node resolves them (real paths, walking up).
 */
export async function planDependencies(appReal: string, pkg: PackageJson): Promise<Placement[]> {
  const placed = new Map<string, string>(); // slot -> realDir
  const queue: { realDir: string; slot: string; pkg: PackageJson }[] = [{ realDir: appReal, slot: '', pkg }];
  const result: Placement[] = [];
  while (queue.length > 0) {
    const item = queue.shift()!;
    const wanted: [string, boolean][] = [
      ...Object.keys(item.pkg.dependencies ?? {}).map((n): [string, boolean] => [n, false]),
      ...Object.keys(item.pkg.optionalDependencies ?? {}).map((n): [string, boolean] => [n, true]),
      // A peer is the host package's choice: packed when installed, skipped when not.
      ...Object.keys(item.pkg.peerDependencies ?? {}).map((n): [string, boolean] => [n, true]),
    ];
    for (const [name, optional] of wanted) {
      const real = await resolvePackage(name, item.realDir);
      if (!real) {
        if (optional) continue;
        throw invalid('dir', `dependency '${name}' of '${item.pkg.name ?? item.realDir}' is not installed: run 'npm install' first`);
      }
      // Where would Node find `name` from this package's new place? Nearest slot first.
      const chain: string[] = [];
      let at = item.slot;
      for (;;) {
        chain.push(at ? `${at}/node_modules/${name}` : `node_modules/${name}`);
        if (!at) break;
        const idx = at.lastIndexOf('/node_modules/');
        at = idx < 0 ? '' : at.slice(0, idx);
      }
      const found = chain.find((s) => placed.has(s));
      if (found && placed.get(found) === real) continue;
      const slot = found ? chain[0]! : `node_modules/${name}`;
      placed.set(slot, real);
      result.push({ realDir: real, slot });
      queue.push({ realDir: real, slot, pkg: await readPkg(real) });
    }
  }
  return result;
}

/** Inside a native addon package, keep the compiled .node files and drop its build tree. */
function skipInPackage(isNative: boolean) {
  return (rel: string, name: string): boolean => {
    if (rel === 'node_modules') return true;
    if (!isNative) return false;
    if (rel === 'deps' || rel === 'src') return true;
    if (rel === 'build' || rel === 'build/Release') return false;
    if (rel.startsWith('build/')) return !(rel.startsWith('build/Release/') && name.endsWith('.node') && !rel.slice(14).includes('/'));
    return false;
  };
}

/** Everything of the app directory that goes into its layer, under /app. */
export async function planAppTree(app: AppDir): Promise<TreeEntry[]> {
  const appReal = await realpath(app.dir);
  const entries: TreeEntry[] = [{ path: 'app', kind: 'dir', mode: 0o755 }];
  const files = app.pkg?.files;
  if (files && files.length > 0) {
    // npm's own "files" list says what the package is made of.
    const wanted = ['package.json', ...files].map((f) => f.replace(/^\.\//, '').replace(/\/$/, ''));
    await walk(appReal, 'app', entries, (rel) => {
      if (SKIP_IN_APP.has(rel.split('/')[0]!)) return true;
      return !wanted.some((w) => rel === w || rel.startsWith(`${w}/`) || w.startsWith(`${rel}/`));
    });
  } else {
    await walk(appReal, 'app', entries, (rel, name) => (SKIP_IN_APP.has(name) && !rel.includes('/')) || name.endsWith('.tsbuildinfo'));
  }
  if (app.pkg) {
    for (const p of await planDependencies(appReal, app.pkg)) {
      const dest = `app/${p.slot}`;
      entries.push({ path: dest, kind: 'dir', mode: 0o755 });
      const isNative = await exists(join(p.realDir, 'binding.gyp'));
      await walk(p.realDir, dest, entries, skipInPackage(isNative));
    }
  }
  const entryPath = `app/${app.config.entry}`;
  if (!entries.some((e) => e.path === entryPath && e.kind === 'file')) {
    throw invalid('entry', `entry '${app.config.entry}' not found in ${app.dir}${app.pkg?.files ? ' (or not listed in package.json "files")' : ''}; build the app first?`);
  }
  return dedupeDirs(entries);
}

function dedupeDirs(entries: TreeEntry[]): TreeEntry[] {
  const seen = new Set<string>();
  return entries.filter((e) => {
    if (seen.has(e.path)) return false;
    seen.add(e.path);
    return true;
  });
}
