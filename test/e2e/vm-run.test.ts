import assert from 'node:assert/strict';
import { chmod, copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cli, cliSpawn, FIXTURES, freePort, httpGet, listFiles, qemuProcesses, removeHome, tempHome, waitFor } from '../helpers.js';

/** `uigniter vm run` on real QEMU guests: env and args reach the app, stop is graceful, nothing is left. */
describe('vm run (foreground, real QEMU)', () => {
  let home: string;

  before(async () => {
    home = await tempHome();
    const hello = await cli(home, ['image', 'build', join(FIXTURES, 'hello'), '--name', 'hello']);
    assert.equal(hello.code, 0, hello.stderr);
    const exit3 = await cli(home, ['image', 'build', join(FIXTURES, 'exit3'), '--name', 'exit3:v1']);
    assert.equal(exit3.code, 0, exit3.stderr);
  });

  after(async () => {
    for (const pid of await qemuProcesses(home)) process.kill(pid, 'SIGKILL');
    await removeHome(home);
  });

  it('serves HTTP that depends on env and args, stops gracefully on Ctrl-C, leaves nothing behind', async () => {
    const port = await freePort();
    const before = await listFiles(home);
    const run = cliSpawn(home, ['vm', 'run', 'hello', '-p', `${port}:8080`, '-e', 'GREETING=hi there', '--', 'one', 'two words', '100%']);
    const body = await waitFor(async () => {
      const r = await httpGet(`http://127.0.0.1:${port}/`);
      return r.status === 200 ? r.body : null;
    }, 90_000, 'the guest to answer HTTP');
    const answer = JSON.parse(body) as { greeting: string; args: string[]; execArgv: string[]; hostname: string };
    assert.equal(answer.greeting, 'hi there');
    assert.deepEqual(answer.args, ['one', 'two words', '100%']);
    // Node runs with the image's V8 flags (images/runtime-layer.ts, NODE_V8_FLAGS).
    assert.deepEqual(answer.execArgv, ['--no-memory-reducer']);
    assert.match(answer.hostname, /^hello-[0-9a-f]{6}$/);
    assert.equal((await qemuProcesses(home)).length, 1, 'one qemu runs while the VM is up');
    const rm = await cli(home, ['image', 'rm', 'hello']);
    assert.equal(rm.code, 4, 'an image in use is not removed');
    assert.match(rm.stderr, /image 'hello:latest' is used by VM hello-[0-9a-f]{6} \(vm run, pid \d+\)/);

    run.child.kill('SIGINT');
    const code = await run.done;
    assert.equal(code, 0, `exit status of a gracefully stopped app; stderr: ${run.err()}`);
    assert.match(run.out(), /hello: listening, greeting=hi there/);
    assert.match(run.out(), /hello: SIGTERM #1, closing/, 'the app got SIGTERM through the init');
    assert.doesNotMatch(run.out(), /SIGTERM #2/, 'exactly once');
    assert.match(run.err(), /ready in [0-9.]+ s/);
    assert.doesNotMatch(run.out(), /^\[\s*\d+\.\d+\]/m, 'kernel messages are not shown without -v');

    assert.deepEqual(await qemuProcesses(home), [], 'no qemu left');
    assert.deepEqual(await listFiles(home), before, 'no socket, config drive or log left in the home');
  });

  it('exits with the app\'s exit status', async () => {
    const r = await cli(home, ['vm', 'run', 'exit3:v1'], { timeoutMs: 90_000 });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /exit3: failing on purpose/);
    assert.deepEqual(await qemuProcesses(home), []);
  });

  it('boots a static ELF binary with no runtime layer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'uigniter-static-'));
    try {
      await copyFile('/bin/busybox', join(dir, 'busybox'));
      await chmod(join(dir, 'busybox'), 0o755);
      await writeFile(
        join(dir, 'uigniter.json'),
        JSON.stringify({ entry: 'busybox', args: ['sh', '-c', 'echo "static says $WHO"; exit 7'] }),
      );
      const b = await cli(home, ['image', 'build', dir, '--name', 'static', '--json']);
      assert.equal(b.code, 0, b.stderr);
      const manifest = JSON.parse(b.stdout) as { runtime: { kind: string }; layers: { role: string }[] };
      assert.equal(manifest.runtime.kind, 'static');
      assert.deepEqual(manifest.layers.map((l) => l.role), ['app']);
      const r = await cli(home, ['vm', 'run', 'static', '-e', 'WHO=busybox'], { timeoutMs: 60_000 });
      assert.equal(r.code, 7, r.stderr);
      assert.match(r.stdout, /static says busybox/);
    } finally {
      await removeHome(dir);
    }
  });

  it('a rebuild of an unchanged app does nothing', async () => {
    const again = await cli(home, ['image', 'build', join(FIXTURES, 'hello'), '--name', 'hello']);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /\(unchanged\)/);
  });

  it('image rm removes the manifest and the layers nothing else uses', async () => {
    const layersBefore = await listFiles(join(home, 'layers'));
    const manifest = JSON.parse((await cli(home, ['image', 'inspect', 'exit3:v1'])).stdout) as { layers: { id: string; role: string }[] };
    const appLayer = `${manifest.layers.find((l) => l.role === 'app')!.id.slice(7)}.sqfs`;
    const runtimeLayer = `${manifest.layers.find((l) => l.role === 'runtime')!.id.slice(7)}.sqfs`;
    const rm = await cli(home, ['image', 'rm', 'exit3:v1']);
    assert.equal(rm.code, 0, rm.stderr);
    assert.doesNotMatch((await cli(home, ['image', 'ls'])).stdout, /exit3/);
    const layersAfter = await listFiles(join(home, 'layers'));
    assert.ok(layersBefore.includes(appLayer) && !layersAfter.includes(appLayer), 'its app layer is gone');
    assert.ok(layersAfter.includes(runtimeLayer), 'the runtime layer hello shares stays');
    assert.equal((await cli(home, ['image', 'rm', 'exit3:v1'])).code, 3);
  });

  describe('bad input: one-line error, non-zero exit, nothing left behind', () => {
    const cases: [string, string[], RegExp][] = [
      ['missing app directory', ['image', 'build', '/nonexistent/app', '--name', 'x'], /app directory '\/nonexistent\/app' does not exist/],
      ['not an app directory', ['image', 'build', '/etc/ssl', '--name', 'x'], /is not an app directory/],
      ['image name with /', ['image', 'build', join(FIXTURES, 'hello'), '--name', 'a/b'], /must not contain '\/'/],
      ['image name with ..', ['image', 'build', join(FIXTURES, 'hello'), '--name', 'a..b'], /must not contain '\.\.'/],
      ['unknown image', ['vm', 'run', 'nosuchimage'], /image 'nosuchimage:latest' not found/],
      ['memory below the image minimum', ['vm', 'run', 'hello', '--mem', '64'], /below the minimum of image hello:latest \(128 MiB\)/],
      ['bad port mapping', ['vm', 'run', 'hello', '-p', 'eighty'], /port mapping 'eighty' must be HOST:GUEST/],
      ['kernel build without linux-source', ['kernel', 'build', '--source-dir', '/nonexistent-src'], /no kernel source in \/nonexistent-src: install it with 'apt-get install linux-source-6.1'/],
    ];
    for (const [what, args, message] of cases) {
      it(what, async () => {
        await mkdir(join(home, 'vms'), { recursive: true });
        const beforeFiles = await listFiles(home);
        const r = await cli(home, args);
        assert.notEqual(r.code, 0);
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, `one line, got: ${r.stderr}`);
        assert.match(lines[0]!, /^uigniter: error: /);
        assert.match(lines[0]!, message);
        assert.deepEqual(await listFiles(home), beforeFiles);
        assert.deepEqual(await qemuProcesses(home), []);
      });
    }
  });
});
