import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readAppDir } from '../../src/images/app-config.js';
import { planAppTree } from '../../src/images/app-packer.js';

async function pkg(dir: string, body: Record<string, unknown>, files: Record<string, string> = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'package.json'), JSON.stringify(body));
  for (const [f, c] of Object.entries(files)) {
    await mkdir(join(dir, f, '..'), { recursive: true });
    await writeFile(join(dir, f), c);
  }
}

describe('app packing: production dependencies laid out for Node lookup', () => {
  let root: string;
  before(async () => {
    // A monorepo: deps hoisted to the root, one conflicting version nested, a workspace link,
    // a dev dependency that must not be packed.
    root = await mkdtemp(join(tmpdir(), 'uigniter-pack-'));
    const app = join(root, 'apps', 'svc');
    await pkg(app, { name: 'svc', main: 'dist/main.js', files: ['dist'], dependencies: { a: '1', shared: '*' }, devDependencies: { typescript: '5' } }, { 'dist/main.js': 'x', 'src/main.ts': 'y' });
    await pkg(join(root, 'node_modules', 'a'), { name: 'a', version: '1.0.0', dependencies: { b: '2' } }, { 'index.js': 'a' });
    await pkg(join(root, 'node_modules', 'b'), { name: 'b', version: '1.0.0' }, { 'index.js': 'b1' });
    await pkg(join(root, 'node_modules', 'a', 'node_modules', 'b'), { name: 'b', version: '2.0.0' }, { 'index.js': 'b2' });
    await pkg(join(root, 'node_modules', 'typescript'), { name: 'typescript' }, { 'lib.js': 'big' });
    await pkg(join(root, 'packages', 'shared'), { name: 'shared', dependencies: { b: '1' } }, { 'index.js': 's' });
    await symlink(join(root, 'packages', 'shared'), join(root, 'node_modules', 'shared'));
    await pkg(join(root, 'node_modules', 'native'), { name: 'native' }, { 'binding.gyp': '{}', 'lib/index.js': 'n', 'build/Release/n.node': 'bin', 'build/Release/obj.target/n.o': 'obj', 'deps/sqlite.c': 'c' });
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('packs files listed in package.json, the dependency closure, and no dev dependency', async () => {
    const app = await readAppDir(join(root, 'apps', 'svc'));
    const tree = await planAppTree(app);
    const files = new Map(tree.flatMap((e) => (e.kind === 'file' ? [[e.path, e.source] as const] : [])));
    // What Node's lookup finds from a package's place in the layer, as the packer promises.
    const lookup = (fromDir: string, name: string): string | undefined => {
      for (let dir = fromDir; ; dir = dir.slice(0, dir.lastIndexOf('/node_modules/'))) {
        const hit = files.get(`${dir}/node_modules/${name}/index.js`);
        if (hit) return hit;
        if (!dir.includes('/node_modules/')) return undefined;
      }
    };
    assert.ok(files.has('app/dist/main.js'));
    assert.ok(!files.has('app/src/main.ts'), 'files outside package.json "files" stay out');
    assert.equal(lookup('app', 'a'), join(root, 'node_modules', 'a', 'index.js'));
    assert.equal(lookup('app/node_modules/a', 'b'), join(root, 'node_modules', 'a', 'node_modules', 'b', 'index.js'), 'a gets b@2');
    const shared = [...files.keys()].find((p) => p.endsWith('/shared/index.js'))!;
    assert.equal(lookup(shared.slice(0, -'/index.js'.length), 'b'), join(root, 'node_modules', 'b', 'index.js'), 'the linked workspace package gets b@1');
    assert.ok(![...files.keys()].some((p) => p.includes('typescript')), 'dev dependencies are not packed');
  });

  it('keeps only the compiled .node of a native addon', async () => {
    await pkg(join(root, 'apps', 'nat'), { name: 'nat', main: 'main.js', dependencies: { native: '*' } }, { 'main.js': 'm' });
    const paths = (await planAppTree(await readAppDir(join(root, 'apps', 'nat')))).filter((e) => e.kind === 'file').map((e) => e.path);
    assert.ok(paths.includes('app/node_modules/native/build/Release/n.node'));
    assert.ok(paths.includes('app/node_modules/native/lib/index.js'));
    assert.ok(!paths.some((p) => p.includes('obj.target') || p.includes('/deps/')));
  });

  it('names a missing dependency', async () => {
    await pkg(join(root, 'apps', 'broken'), { name: 'broken', main: 'main.js', dependencies: { nope: '1' } }, { 'main.js': 'm' });
    await assert.rejects(planAppTree(await readAppDir(join(root, 'apps', 'broken'))), /dependency 'nope' of 'broken' is not installed/);
  });

  it('refuses an entry outside the app directory', async () => {
    await pkg(join(root, 'apps', 'escape'), { name: 'escape', main: '../../etc/passwd' });
    await assert.rejects(readAppDir(join(root, 'apps', 'escape')), /must be a path inside the app directory/);
  });
});
