import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestDaemon, type TestDaemon } from '../daemon-harness.js';
import { cli, cliSpawn, FIXTURES, freePort, waitFor } from '../helpers.js';

/** The CLI against a real daemon (UIGNITER_HOST): tables for people, JSON for scripts, exit codes that mean something. */
describe('uigniter CLI against the daemon', () => {
  let d: TestDaemon;
  const run = (args: string[]) => cli(d.home, args, { env: { UIGNITER_HOST: d.url } });

  before(async () => {
    d = await startTestDaemon();
  });
  after(async () => {
    await d?.destroy();
  });

  it('build, run, ps, inspect, logs, stop, start, rm', async () => {
    const build = await run(['build', join(FIXTURES, 'hello'), '-n', 'hello:v1']);
    assert.equal(build.code, 0, build.stderr);
    assert.match(build.stdout, /^hello:v1 sha256:[0-9a-f]{12}/);
    assert.match((await run(['images'])).stdout, /^NAME\s+TAG\s+DIGEST.*\nhello\s+v1\s+/);

    const port = await freePort();
    const r = await run(['run', 'hello:v1', '--name', 'web', '-e', 'GREETING=cli', '-p', `${port}:8080`, '--json', '--', 'a b']);
    assert.equal(r.code, 0, r.stderr);
    const vm = JSON.parse(r.stdout) as { state: string; ip: string; args: string[] };
    assert.equal(vm.state, 'running');
    assert.deepEqual(vm.args, ['a b']);
    const answer = (await (await fetch(`http://127.0.0.1:${port}/`)).json()) as { greeting: string };
    assert.equal(answer.greeting, 'cli');

    const ps = await run(['ps']);
    assert.match(ps.stdout, /^ID\s+NAME\s+IMAGE\s+STATE\s+IP\s+PORTS\s+BOOT\s+AGE\n[0-9a-f]{12}\s+web\s+hello:v1\s+running\s+172\.29\.\d+\.\d+\s+127\.0\.0\.1:\d+->8080/);
    assert.equal((JSON.parse((await run(['ps', '--json'])).stdout) as unknown[]).length, 1);
    assert.equal((JSON.parse((await run(['inspect', 'web'])).stdout) as { name: string }).name, 'web');

    // logs -f streams until the VM stops.
    const follow = cliSpawn(d.home, ['logs', '-f', 'web'], { UIGNITER_HOST: d.url });
    await waitFor(async () => follow.out().includes('hello: listening'), 10_000, 'logs -f to show the console');
    const stop = await run(['stop', 'web']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /web\s+hello:v1\s+stopped \(0\)/);
    assert.equal(await follow.done, 0, 'logs -f ends when the VM stops');
    assert.match(follow.out(), /hello: SIGTERM #1, closing/);
    assert.match((await run(['logs', '-n', '3', 'web'])).stdout, /exit/);

    assert.equal((await run(['start', 'web'])).code, 0);
    assert.equal((await run(['rm', '-f', 'web'])).code, 0);
    assert.deepEqual(JSON.parse((await run(['ps', '--json'])).stdout), []);
  });

  it('exit codes: 3 not found, 2 bad input, 4 conflict, 5 no daemon; one line each', async () => {
    const cases: [string[], number, RegExp, NodeJS.ProcessEnv?][] = [
      [['stop', 'ghost'], 3, /VM 'ghost' not found/],
      [['run', 'hello:v1', '--mem', '-3'], 2, /memMiB/],
      [['run', 'hello:v1', '-v', 'bad'], 2, /volume 'bad' must be NAME:\/PATH/],
      [['run', 'nope'], 3, /image 'nope:latest' not found/],
      [['volume', 'rm', 'never'], 3, /volume 'never' not found/],
      [['ps'], 5, /cannot reach the uigniter daemon at http:\/\/127\.0\.0\.1:1/, { UIGNITER_HOST: 'http://127.0.0.1:1' }],
    ];
    for (const [args, code, message, env] of cases) {
      const r = await cli(d.home, args, { env: { UIGNITER_HOST: d.url, ...env } });
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, message);
    }
    await run(['run', 'hello:v1', '--name', 'dup', '-d']);
    const dup = await run(['run', 'hello:v1', '--name', 'dup']);
    assert.equal(dup.code, 4, dup.stderr);
    assert.match(dup.stderr, /already exists/);
    await run(['rm', '-f', 'dup']);
  });
});
